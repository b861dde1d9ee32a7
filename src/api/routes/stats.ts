import { type Field, inspection, stations } from '../../catalog/index.ts'
import type { Pool } from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import { sendJsonText } from '../reading.ts'
import {
  type Bucket,
  numericFieldsOf,
  QualityQuery,
  QualitySummary,
  Timeseries,
  TimeseriesQuery,
} from '../schemas.ts'
import type { Api } from '../types.ts'

const BUCKETS: Record<Bucket, { table: string; seconds: number }> = {
  '1m': { table: 'rollup_1m', seconds: 60 },
  '1h': { table: 'rollup_1h', seconds: 3600 },
}
const MAX_POINTS = 20_000

const TIMESERIES = (table: string) => `
SELECT coalesce(json_agg(json_build_object(
  't', bucket, 'count', n, 'min', min, 'max', max, 'mean', sum / n,
  'stddev', CASE WHEN n > 1 THEN sqrt(greatest((sumsq - sum * sum / n) / (n - 1), 0)) END) ORDER BY bucket), '[]')::text AS points
FROM ${table}
WHERE station = $1 AND field = $2 AND category = '' AND bucket >= $3 AND bucket < $4`

/** Inspections per result and defects, in total and per bucket ($3 station, $4 result field, $5 defects field). */
const QUALITY = (table: string) => `
WITH r AS (
  SELECT bucket, field, category, n, sum FROM ${table}
  WHERE station = $3 AND field IN ($4, $5) AND bucket >= $1 AND bucket < $2
)
SELECT
  (SELECT coalesce(json_object_agg(category, n), '{}') FROM (
     SELECT category, sum(n)::bigint AS n FROM r WHERE field = $4 GROUP BY category) c)::text AS counts,
  (SELECT coalesce(sum(sum), 0) FROM r WHERE field = $5) AS defects,
  (SELECT coalesce(json_agg(s ORDER BY s.t), '[]') FROM (
     SELECT bucket AS t,
            coalesce(json_object_agg(category, n) FILTER (WHERE field = $4), '{}') AS results,
            coalesce(sum(sum) FILTER (WHERE field = $5), 0) AS defects
     FROM r GROUP BY bucket) s)::text AS series`

/** One count per inspection result of the catalog, in its order, 0 where none. */
const perResult = (counts: Record<string, number | string>) =>
  Object.fromEntries(
    inspection.results.map((result) => [result, Number(counts[result] ?? 0)]),
  ) as QualitySummary['counts']

/**
 * The request's window, starting at a whole bucket so the first bucket is complete in the answer,
 * and holding at most MAX_POINTS buckets: a longer window keeps its newest ones (the answer's
 * `from` says where it starts).
 */
function bucketedWindow(
  q: { from?: string; to?: string },
  bucket: Bucket,
  defaultSpanMs: number,
): { start: Date; to: Date } {
  const { from, to } = windowOf(q, defaultSpanMs)
  const ms = BUCKETS[bucket].seconds * 1000
  const first = Math.max(from.getTime(), to.getTime() - MAX_POINTS * ms)
  return { start: new Date(Math.floor(first / ms) * ms), to }
}

export function statsRoutes(app: Api, pool: Pool): void {
  timeseriesRoute(app, pool)
  qualityRoute(app, pool)
}

function timeseriesRoute(app: Api, pool: Pool): void {
  app.get(
    '/stats/timeseries',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary:
          'Count, min, max, mean and standard deviation of a measurement per minute or hour (from the rollups)',
        description:
          'Default window: the last 6 hours for `1m`, the last 7 days for `1h`. At most 20,000 buckets: a longer window keeps its newest (the answer’s `from` says where it starts). A `field` of another station than `station` is a 404.',
        tags: ['stats'],
        querystring: TimeseriesQuery,
        response: answers({ 200: Timeseries }, { notFound: true }),
      },
    },
    async (req, reply) => {
      const { station, field, bucket } = req.query
      const allowed = numericFieldsOf(station)
      if (!allowed.includes(field)) {
        // A measurement of the catalog, but of another station: no such series.
        const detail = `${station} has no measurement "${field}"; its numeric ones: ${allowed.join(', ')}`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      const { start, to } = bucketedWindow(req.query, bucket, bucket === '1m' ? 6 * 3600_000 : 7 * 86_400_000)
      const { rows } = await pool.query<{ points: string }>(TIMESERIES(BUCKETS[bucket].table), [
        station,
        field,
        start,
        to,
      ])
      const f = (stations[station].fields as Readonly<Record<string, Field>>)[field]
      const head: Omit<Timeseries, 'points'> = {
        station,
        field,
        unit: f?.unit ?? '',
        bucket,
        from: start.toISOString(),
        to: to.toISOString(),
      }
      // The points are JSON built by PostgreSQL: spliced in rather than parsed and serialised again.
      return sendJsonText(reply, `${JSON.stringify(head).slice(0, -1)},"points":${rows[0]!.points}}`)
    },
  )
}

function qualityRoute(app: Api, pool: Pool): void {
  app.get(
    '/quality/summary',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: `Inspections per result (${inspection.results.join(', ')}), first-pass yield and defects, in total and per bucket`,
        description: `Default window: the last 24 hours. First-pass yield = ${inspection.pass} / inspections.`,
        tags: ['stats'],
        querystring: QualityQuery,
        response: answers({ 200: QualitySummary }),
      },
    },
    async (req) => {
      const { bucket } = req.query
      const { start, to } = bucketedWindow(req.query, bucket, 86_400_000)
      const { rows } = await pool.query<QualityRow>(QUALITY(BUCKETS[bucket].table), [
        start,
        to,
        inspection.station,
        inspection.field,
        inspection.defects,
      ])
      return { from: start.toISOString(), to: to.toISOString(), bucket, ...summarise(rows[0]!) }
    },
  )
}

interface QualityRow {
  counts: string
  defects: number
  series: string
}

/** Counts, rates and the per-bucket series of the quality query's one row. */
function summarise(row: QualityRow): Omit<QualitySummary, 'from' | 'to' | 'bucket'> {
  const counts = perResult(JSON.parse(row.counts) as Record<string, number>)
  const inspections = Object.values(counts).reduce((a, n) => a + n, 0)
  const rate = (n: number) => (inspections > 0 ? n / inspections : null)
  const defects = Number(row.defects)
  const series = JSON.parse(row.series) as { t: string; results: Record<string, number>; defects: number }[]
  return {
    inspections,
    counts,
    rates: Object.fromEntries(
      Object.entries(counts).map(([result, n]) => [result, rate(n)]),
    ) as QualitySummary['rates'],
    first_pass_yield: rate(counts[inspection.pass] ?? 0),
    defects: { total: defects, per_inspection: inspections > 0 ? defects / inspections : null },
    series: series.map((p) => ({ t: p.t, ...perResult(p.results), defects: p.defects })),
  }
}
