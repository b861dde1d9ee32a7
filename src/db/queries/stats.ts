/**
 * The statistics the API serves, from the rollups (`rollup_1m`, `rollup_1h`) and, at the edges of
 * a window, from the readings themselves. Series are built as JSON by PostgreSQL.
 */
import type { Pool } from '../pool.ts'

/** A rollup table's bucket. */
export type Bucket = '1m' | '1h'

export const BUCKET_SECONDS: Record<Bucket, number> = { '1m': 60, '1h': 3600 }
const TABLE: Record<Bucket, string> = { '1m': 'rollup_1m', '1h': 'rollup_1h' }

/**
 * Records per station of the catalog (retired ones too) in [from, to): whole minutes from the
 * 1-minute rollups (the count of each station's first measurement, over its categories: every
 * reading carries all of its station's measurements), and the partial minutes at either edge from
 * the readings themselves. Exact, and a few hundred rows read at most.
 */
const COUNTS = `
SELECT s.station, coalesce(sum(c.n), 0)::int AS records
FROM (SELECT station FROM catalog_fields WHERE position = 0) s LEFT JOIN (
  SELECT r.station, sum(r.n) AS n FROM rollup_1m r
  JOIN catalog_fields f ON f.position = 0 AND r.station = f.station AND r.field = f.field
  WHERE r.bucket >= $3 AND r.bucket < $4 GROUP BY r.station
  UNION ALL
  SELECT station, count(*) FROM sensor_data WHERE reading_time >= $1 AND reading_time < $3 GROUP BY station
  UNION ALL
  SELECT station, count(*) FROM sensor_data WHERE reading_time >= $4 AND reading_time < $2 GROUP BY station
) c USING (station)
GROUP BY s.station ORDER BY s.station`

/** Readings per station of the catalog in [from, to), every station listed (0 where none). */
export async function readingCounts(
  pool: Pool,
  from: Date,
  to: Date,
): Promise<{ station: string; records: number }[]> {
  // Whole minutes [mlo, mhi) from the rollups; the edges, or a window inside one minute, from rows.
  let mlo = new Date(Math.ceil(from.getTime() / 60_000) * 60_000)
  let mhi = new Date(Math.floor(to.getTime() / 60_000) * 60_000)
  if (mlo >= mhi) mlo = mhi = to
  const { rows } = await pool.query<{ station: string; records: number }>({
    name: 'stats-counts',
    text: COUNTS,
    values: [from, to, mlo, mhi],
  })
  return rows
}

/**
 * Count, min, max, mean and sample standard deviation of a numeric field per bucket in
 * [from, to), oldest first, as the JSON array of the timeseries' `points`.
 */
export async function timeseriesPoints(
  pool: Pool,
  q: { station: string; field: string; bucket: Bucket; from: Date; to: Date },
): Promise<string> {
  const { rows } = await pool.query<{ points: string }>(
    `SELECT coalesce(json_agg(json_build_object(
       't', bucket, 'count', n, 'min', min, 'max', max, 'mean', sum / n,
       'stddev', CASE WHEN n > 1 THEN sqrt(greatest((sumsq - sum * sum / n) / (n - 1), 0)) END) ORDER BY bucket), '[]')::text AS points
     FROM ${TABLE[q.bucket]}
     WHERE station = $1 AND field = $2 AND category = '' AND bucket >= $3 AND bucket < $4`,
    [q.station, q.field, q.from, q.to],
  )
  return rows[0]!.points
}

/** Inspections per result and defects, in total and per bucket, as stored. */
export interface QualityCounts {
  /** inspections per result that occurred */
  counts: Record<string, number>
  defects: number
  series: { t: string; results: Record<string, number>; defects: number }[]
}

/** Inspections per result and defects ($3 station, $4 result field, $5 defects field or null). */
const QUALITY = (table: string) => `
WITH r AS (
  SELECT bucket, field, category, n, sum FROM ${table}
  WHERE station = $3 AND field IN ($4, $5) AND bucket >= $1 AND bucket < $2
)
SELECT
  (SELECT coalesce(json_object_agg(category, n), '{}') FROM (
     SELECT category, sum(n)::bigint AS n FROM r WHERE field = $4 GROUP BY category) c) AS counts,
  (SELECT coalesce(sum(sum), 0) FROM r WHERE field = $5) AS defects,
  (SELECT coalesce(json_agg(s ORDER BY s.t), '[]') FROM (
     SELECT bucket AS t,
            coalesce(json_object_agg(category, n) FILTER (WHERE field = $4), '{}') AS results,
            coalesce(sum(sum) FILTER (WHERE field = $5), 0) AS defects
     FROM r GROUP BY bucket) s) AS series`

/** An inspection station's results and defects in [from, to), per bucket and in total. */
export async function qualityCounts(
  pool: Pool,
  inspection: { station: string; field: string; defects: string | undefined },
  bucket: Bucket,
  from: Date,
  to: Date,
): Promise<QualityCounts> {
  const { rows } = await pool.query<{
    counts: Record<string, number>
    defects: number
    series: QualityCounts['series']
  }>(QUALITY(TABLE[bucket]), [from, to, inspection.station, inspection.field, inspection.defects ?? null])
  const row = rows[0]!
  return { counts: row.counts, defects: Number(row.defects), series: row.series }
}
