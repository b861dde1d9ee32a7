import { type Inspection, specAt } from '../../catalog/index.ts'
import {
  BUCKET_SECONDS,
  type Pool,
  type QualityCounts,
  qualityCounts,
  timeseriesPoints,
} from '../../db/index.ts'
import type { LiveCatalog } from '../catalog.ts'
import { sendJsonText } from '../json-text.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import { type Bucket, QualityQuery, QualitySummary, Timeseries, TimeseriesQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

const MAX_POINTS = 20_000

/** One count per inspection result of the catalog, in its order, 0 where none. */
const perResult = (inspection: Inspection, counts: Record<string, number | string>) =>
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

export function statsRoutes(app: Api, pool: Pool, live: LiveCatalog): void {
  timeseriesRoute(app, pool, live)
  qualityRoute(app, pool, live)
}

function timeseriesRoute(app: Api, pool: Pool, live: LiveCatalog): void {
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
      const numeric = live.catalog.known(station)?.measurements.filter((m) => m.numeric) ?? []
      const m = numeric.find((x) => x.name === field)
      if (!m || !('range' in m)) {
        // A measurement of the catalog, but of another station: no such series.
        const allowed = numeric.map((x) => x.name).join(', ')
        const detail = `${station} has no measurement "${field}"; its numeric ones: ${allowed}`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      const { start, to } = bucketedWindow(req.query, bucket, bucket === '1m' ? 6 * 3600_000 : 7 * 86_400_000)
      const points = await timeseriesPoints(pool, { station, field, bucket, from: start, to })
      // The limits in force over the window, oldest first: the one at its start, then each change.
      const fromSec = start.getTime() / 1000
      const toSec = to.getTime() / 1000
      const first = specAt(m, fromSec)
      const limits = [...m.limits]
        .reverse()
        .filter((v) => v === first || (v.from > fromSec && v.from < toSec))
        .map((v) => ({
          from: Number.isFinite(v.from) ? new Date(v.from * 1000).toISOString() : null,
          lsl: v.lsl ?? null,
          target: v.target ?? null,
          usl: v.usl ?? null,
        }))
      const head: Omit<Timeseries, 'points'> = {
        station,
        field,
        unit: m.symbol ?? m.unit,
        limits,
        bucket,
        from: start.toISOString(),
        to: to.toISOString(),
      }
      // The points are JSON built by PostgreSQL: spliced in rather than parsed and serialised again.
      return sendJsonText(reply, `${JSON.stringify(head).slice(0, -1)},"points":${points}}`)
    },
  )
}

function qualityRoute(app: Api, pool: Pool, live: LiveCatalog): void {
  app.get(
    '/quality/summary',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: 'Inspections per result, first-pass yield and defects, in total and per bucket',
        description:
          'Of an inspection station: one whose catalog entry has an `inspection_result` (an enum with a `pass` value) and optionally a `defect_count`. Default window: the last 24 hours. First-pass yield = inspections with the pass value / inspections. A station without an inspection is a 404.',
        tags: ['stats'],
        querystring: QualityQuery,
        response: answers({ 200: QualitySummary }, { notFound: true }),
      },
    },
    async (req, reply) => {
      const { bucket, station } = req.query
      const inspection = live.catalog.inspection(station)
      if (!inspection) {
        const detail = station
          ? `${station} has no inspection_result measurement`
          : 'no station of the catalog has an inspection_result measurement'
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      const { start, to } = bucketedWindow(req.query, bucket, 86_400_000)
      const stored = await qualityCounts(pool, inspection, bucket, start, to)
      const head = { from: start.toISOString(), to: to.toISOString(), bucket, station: inspection.station }
      return { ...head, ...summarise(inspection, stored) }
    },
  )
}

/** Counts, rates and the per-bucket series, every result of the catalog listed. */
function summarise(
  inspection: Inspection,
  row: QualityCounts,
): Omit<QualitySummary, 'from' | 'to' | 'bucket' | 'station'> {
  const counts = perResult(inspection, row.counts)
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
    series: series.map((p) => ({ t: p.t, ...perResult(inspection, p.results), defects: p.defects })),
  }
}
