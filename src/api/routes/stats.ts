import type { FastifyInstance } from 'fastify'
import { type Field, inspection, type StationName, stationNames, stations } from '../../catalog/index.ts'
import type { Pool } from '../../db/index.ts'
import { BadParameter, timeParam, windowOf } from '../params.ts'

const BUCKETS = {
  '1m': { table: 'rollup_1m', seconds: 60 },
  '1h': { table: 'rollup_1h', seconds: 3600 },
} as const
type Bucket = keyof typeof BUCKETS
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
const perResult = (counts: Record<string, number | string>): Record<string, number> =>
  Object.fromEntries(inspection.results.map((result) => [result, Number(counts[result] ?? 0)]))

const bucketParam = { type: 'string', enum: Object.keys(BUCKETS), default: '1m' } as const

/** Numeric fields of a station: what a time series can be drawn for. */
const numericFields = (station: StationName) =>
  Object.entries(stations[station].fields)
    .filter(([, f]) => f.kind !== 'enum')
    .map(([name]) => name)

/**
 * The request's window, starting at a whole bucket so the first bucket is complete in the answer;
 * a 400 when it holds more than MAX_POINTS buckets.
 */
function bucketedWindow(
  q: { from?: string; to?: string },
  bucket: Bucket,
  defaultSpanMs: number,
): { start: Date; to: Date } {
  const { from, to } = windowOf(q, defaultSpanMs)
  const ms = BUCKETS[bucket].seconds * 1000
  if ((to.getTime() - from.getTime()) / ms > MAX_POINTS) {
    throw new BadParameter(
      'from',
      `the window holds more than ${MAX_POINTS} ${bucket} buckets; use bucket=1h or a shorter window`,
    )
  }
  return { start: new Date(Math.floor(from.getTime() / ms) * ms), to }
}

export function statsRoutes(app: FastifyInstance, pool: Pool): void {
  app.get<{
    Querystring: { station: StationName; field: string; bucket: Bucket; from?: string; to?: string }
  }>(
    '/stats/timeseries',
    {
      config: { cacheable: true },
      schema: {
        summary:
          'Count, min, max, mean and standard deviation of a measurement per minute or hour (from the rollups)',
        description:
          'Default window: the last 6 hours for `1m`, the last 7 days for `1h`. At most 20,000 buckets.',
        tags: ['stats'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          required: ['station', 'field'],
          properties: {
            station: { type: 'string', enum: stationNames },
            field: { type: 'string', maxLength: 64 },
            bucket: bucketParam,
            from: timeParam,
            to: timeParam,
          },
        },
      },
    },
    async (req, reply) => {
      const { station, field, bucket } = req.query
      const allowed = numericFields(station)
      if (!allowed.includes(field)) {
        throw new BadParameter(
          'field',
          `"${field.slice(0, 64)}" is not a numeric measurement of ${station}; allowed: ${allowed.join(', ')}`,
        )
      }
      const b = BUCKETS[bucket]
      const { start, to } = bucketedWindow(req.query, bucket, bucket === '1m' ? 6 * 3600_000 : 7 * 86_400_000)
      const { rows } = await pool.query<{ points: string }>(TIMESERIES(b.table), [station, field, start, to])
      const f = (stations[station].fields as Readonly<Record<string, Field>>)[field]
      const head = JSON.stringify({
        station,
        field,
        unit: f?.unit ?? '',
        bucket,
        from: start.toISOString(),
        to: to.toISOString(),
      })
      return reply
        .type('application/json; charset=utf-8')
        .send(`${head.slice(0, -1)},"points":${rows[0]!.points}}`)
    },
  )

  app.get<{ Querystring: { bucket: Bucket; from?: string; to?: string } }>(
    '/quality/summary',
    {
      config: { cacheable: true },
      schema: {
        summary: `Inspections per result (${inspection.results.join(', ')}), first-pass yield and defects, in total and per bucket`,
        description: `Default window: the last 24 hours. First-pass yield = ${inspection.pass} / inspections.`,
        tags: ['stats'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { bucket: { ...bucketParam, default: '1h' }, from: timeParam, to: timeParam },
        },
      },
    },
    async (req) => {
      const b = BUCKETS[req.query.bucket]
      const { start, to } = bucketedWindow(req.query, req.query.bucket, 86_400_000)
      const { rows } = await pool.query<{ counts: string; defects: number; series: string }>(
        QUALITY(b.table),
        [start, to, inspection.station, inspection.field, inspection.defects],
      )
      const counts = perResult(JSON.parse(rows[0]!.counts) as Record<string, number>)
      const inspections = Object.values(counts).reduce((a, n) => a + n, 0)
      const rate = (n: number) => (inspections > 0 ? n / inspections : null)
      const defects = Number(rows[0]!.defects)
      const series = JSON.parse(rows[0]!.series) as {
        t: string
        results: Record<string, number>
        defects: number
      }[]
      return {
        from: start.toISOString(),
        to: to.toISOString(),
        bucket: req.query.bucket,
        inspections,
        counts,
        rates: Object.fromEntries(Object.entries(counts).map(([result, n]) => [result, rate(n)])),
        first_pass_yield: rate(counts[inspection.pass] ?? 0),
        defects: { total: defects, per_inspection: inspections > 0 ? defects / inspections : null },
        series: series.map((p) => ({ t: p.t, ...perResult(p.results), defects: p.defects })),
      }
    },
  )
}
