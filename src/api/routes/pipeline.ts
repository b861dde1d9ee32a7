import type { FastifyInstance } from 'fastify'
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client'
import { readingCountFields } from '../../catalog/index.ts'
import { type EtlHealth, etlHealth, type Pool } from '../../db/index.ts'
import type { ResponseCache } from '../cache.ts'
import { timeParam, windowOf } from '../params.ts'

const STATUS = `
SELECT
  (SELECT row_to_json(r) FROM (
     SELECT mode, started_at, finished_at, status, rows, dead_letters, error FROM etl_runs ORDER BY id DESC LIMIT 1) r) AS last_run,
  (SELECT coalesce(sum(r.n), 0) FROM rollup_1m r
     JOIN unnest($3::text[], $4::text[]) AS f(station, field) ON r.station = f.station AND r.field = f.field
     WHERE r.bucket >= date_trunc('minute', $1::timestamptz) AND r.bucket < $2) AS ingested,
  (SELECT coalesce(json_agg(d ORDER BY d.n DESC), '[]') FROM (
     SELECT reason_code, count(*) AS n FROM dead_letters WHERE created_at >= $1 AND created_at < $2 GROUP BY reason_code) d) AS by_reason,
  (SELECT coalesce(json_agg(d), '[]') FROM (
     SELECT id, topic, partition, "offset", reason_code, reason, created_at FROM dead_letters
     WHERE created_at >= $1 AND created_at < $2 ORDER BY id DESC LIMIT 20) d) AS recent`

interface StatusRow {
  etl: EtlHealth
  last_run: Record<string, unknown> | null
  ingested: string
  by_reason: { reason_code: string; n: number }[]
  recent: unknown[]
}

async function status(pool: Pool, from: Date, to: Date, stallSec: number): Promise<StatusRow> {
  const [{ rows }, etl] = await Promise.all([
    pool.query<Omit<StatusRow, 'etl'>>(STATUS, [
      from,
      to,
      readingCountFields.stations,
      readingCountFields.fields,
    ]),
    etlHealth(pool, stallSec),
  ])
  return { ...rows[0]!, etl }
}

/** `/pipeline/status` for people (and the dashboard), `/metrics` for Prometheus. */
export function pipelineRoutes(
  app: FastifyInstance,
  pool: Pool,
  stallSec: number,
  cache?: ResponseCache,
): void {
  app.get<{ Querystring: { from?: string; to?: string } }>(
    '/pipeline/status',
    {
      schema: {
        summary:
          'ETL health: last commit and run, lag per partition, ingest in the window, dead letters by reason',
        description: 'Default window: the last 15 minutes.',
        tags: ['ops'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { from: timeParam, to: timeParam },
        },
      },
    },
    async (req) => {
      const { from, to } = windowOf(req.query, 15 * 60_000)
      const s = await status(pool, from, to, stallSec)
      const last = s.etl.last_commit_at
      const rows = Number(s.ingested)
      return {
        from: from.toISOString(),
        to: to.toISOString(),
        etl: {
          last_commit_at: last?.toISOString() ?? null,
          seconds_since: last ? Math.round((Date.now() - last.getTime()) / 1000) : null,
          stalled: s.etl.stalled,
          stall_sec: stallSec,
          last_run: s.last_run,
        },
        lag: {
          total: s.etl.lag ?? 0,
          partitions: s.etl.partitions,
        },
        ingest: { rows, rows_per_second: rows / ((to.getTime() - from.getTime()) / 1000) },
        dead_letters: {
          total: s.by_reason.reduce((n, r) => n + r.n, 0),
          by_reason: s.by_reason.map((r) => ({ reason_code: r.reason_code, count: r.n })),
          recent: s.recent,
        },
      }
    },
  )

  // One registry per app (tests build several apps in one process).
  const registry = new Registry()
  collectDefaultMetrics({ register: registry, prefix: 'evf_api_' })
  const latency = new Histogram({
    name: 'evf_http_request_duration_seconds',
    help: 'HTTP request latency by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  const errors = new Counter({
    name: 'evf_http_errors_total',
    help: 'HTTP responses with status >= 500',
    labelNames: ['route'],
    registers: [registry],
  })
  app.addHook('onResponse', async (req, reply) => {
    const route = req.routeOptions.url ?? 'unmatched'
    latency.observe({ method: req.method, route, status: reply.statusCode }, reply.elapsedTime / 1000)
    if (reply.statusCode >= 500) errors.inc({ route })
  })
  const gauge = (name: string, help: string, labelNames: string[] = []) =>
    new Gauge({ name, help, labelNames, registers: [registry] })
  const rowsLoaded = gauge('evf_rows_loaded', 'Readings stored, per station (from the hourly rollups)', [
    'station',
  ])
  const deadLetters = gauge('evf_dead_letters', 'Dead letters not yet re-driven, per reason', ['reason_code'])
  const lag = gauge('evf_consumer_lag', 'Messages in Kafka not yet loaded, per partition', [
    'topic',
    'partition',
  ])
  if (cache?.enabled) {
    const { stats } = cache
    new Counter({
      name: 'evf_api_cache_requests_total',
      help: 'Cacheable requests answered from the response cache (hit) or computed (miss)',
      labelNames: ['result'],
      registers: [registry],
      collect() {
        this.reset()
        this.inc({ result: 'hit' }, stats.hits)
        this.inc({ result: 'miss' }, stats.misses)
      },
    })
    new Counter({
      name: 'evf_api_cache_invalidations_total',
      help: 'Times an ETL commit (NOTIFY) emptied the response cache',
      registers: [registry],
      collect() {
        this.reset()
        this.inc(stats.invalidations)
      },
    })
  }
  const stalled = gauge(
    'evf_etl_stalled',
    '1 when messages wait in Kafka and the ETL has committed nothing for etlStallSec, else 0',
  )
  const lastCommit = gauge('evf_etl_last_commit_timestamp_seconds', 'When the ETL last committed a batch')
  const lastRun = gauge(
    'evf_etl_last_run_timestamp_seconds',
    'When the last ETL run finished (or was last seen running)',
  )
  const lastRunOk = gauge(
    'evf_etl_last_run_success',
    '1 if the last ETL run succeeded or is running, 0 if it failed',
  )

  app.get('/metrics', { schema: { summary: 'Prometheus metrics', tags: ['ops'] } }, async (_req, reply) => {
    const { rows } = await pool.query<{
      m: { loaded: { station: string; n: number }[]; dead: { reason_code: string; n: number }[] }
    }>(
      `SELECT json_build_object(
         'loaded', (SELECT coalesce(json_agg(x), '[]') FROM (
            SELECT r.station, sum(r.n) AS n FROM rollup_1h r
            JOIN unnest($1::text[], $2::text[]) AS f(station, field) ON r.station = f.station AND r.field = f.field
            GROUP BY r.station) x),
         'dead', (SELECT coalesce(json_agg(x), '[]') FROM (
            SELECT reason_code, count(*) AS n FROM dead_letters WHERE resolved_at IS NULL GROUP BY reason_code) x)) AS m`,
      [readingCountFields.stations, readingCountFields.fields],
    )
    const s = await status(pool, new Date(Date.now() - 60_000), new Date(), stallSec)
    rowsLoaded.reset()
    for (const r of rows[0]!.m.loaded) rowsLoaded.set({ station: r.station }, Number(r.n))
    deadLetters.reset()
    for (const r of rows[0]!.m.dead) deadLetters.set({ reason_code: r.reason_code }, Number(r.n))
    lag.reset()
    for (const p of s.etl.partitions)
      if (p.lag !== null) lag.set({ topic: p.topic, partition: p.partition }, p.lag)
    stalled.set(s.etl.stalled ? 1 : 0)
    if (s.etl.last_commit_at) lastCommit.set(s.etl.last_commit_at.getTime() / 1000)
    const run = s.last_run as { finished_at?: string | null; started_at?: string; status?: string } | null
    if (run) {
      lastRun.set(Date.parse(run.finished_at ?? run.started_at ?? '') / 1000 || 0)
      lastRunOk.set(run.status === 'failed' ? 0 : 1)
    }
    return reply.type(registry.contentType).send(await registry.metrics())
  })
}
