import { type Field, inspection, stations } from '../../catalog/index.ts'
import {
  BUCKET_SECONDS,
  type Pool,
  type QualityCounts,
  qualityCounts,
  timeseriesPoints,
} from '../../db/index.ts'
import { sendJsonText } from '../json-text.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import {
  type Bucket,
  numericFieldsOf,
  QualityQuery,
  QualitySummary,
  Timeseries,
  TimeseriesQuery,
} from '../schemas.ts'
import type { Api } from '../types.ts'

const MAX_POINTS = 20_000

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
  const ms = BUCKET_SECONDS[bucket] * 1000
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
      const points = await timeseriesPoints(pool, { station, field, bucket, from: start, to })
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
      return sendJsonText(reply, `${JSON.stringify(head).slice(0, -1)},"points":${points}}`)
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
      const stored = await qualityCounts(pool, bucket, start, to)
      return { from: start.toISOString(), to: to.toISOString(), bucket, ...summarise(stored) }
    },
  )
}

/** Counts, rates and the per-bucket series, every result of the catalog listed. */
function summarise(row: QualityCounts): Omit<QualitySummary, 'from' | 'to' | 'bucket'> {
  const counts = perResult(row.counts)
  const inspections = Object.values(counts).reduce((a, n) => a + n, 0)
  const rate = (n: number) => (inspections > 0 ? n / inspections : null)
  const { defects, series } = row
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
