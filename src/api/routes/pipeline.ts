import { readingCountFields } from '../../catalog/index.ts'
import {
  type EtlHealth,
  etlHealth,
  kafkaNodes,
  type Pool,
  type ReplicaLag,
  replicaLag,
} from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { answers } from '../problems.ts'
import { PipelineStatus, WindowQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

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
  /** the standby the API reads from, when there is one */
  replica: ReplicaLag | null
  kafka: PipelineStatus['kafka']
  last_run: PipelineStatus['etl']['last_run']
  ingested: string
  by_reason: { reason_code: string; n: number }[]
  recent: PipelineStatus['dead_letters']['recent']
}

export async function status(
  pool: Pool,
  from: Date,
  to: Date,
  stallSec: number,
  replica?: Pool,
): Promise<StatusRow> {
  const [{ rows }, etl, lag, nodes] = await Promise.all([
    pool.query<Omit<StatusRow, 'etl'>>(STATUS, [
      from,
      to,
      readingCountFields.stations,
      readingCountFields.fields,
    ]),
    etlHealth(pool, stallSec),
    replica ? replicaLag(replica) : null,
    kafkaNodes(pool),
  ])
  return { ...rows[0]!, etl, replica: lag, kafka: nodes }
}

/** `/pipeline/status` for people and the dashboard (`/metrics`, for Prometheus, is in metrics.ts). */
export function pipelineRoutes(app: Api, pool: Pool, stallSec: number, replica?: Pool): void {
  app.get(
    '/pipeline/status',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'ETL health: last commit and run, lag per partition, ingest in the window, dead letters by reason',
        description: 'Default window: the last 15 minutes.',
        tags: ['ops'],
        querystring: WindowQuery,
        response: answers({ 200: PipelineStatus }),
      },
    },
    async (req) => {
      const { from, to } = windowOf(req.query, 15 * 60_000)
      const s = await status(pool, from, to, stallSec, replica)
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
        replica: s.replica,
        kafka: s.kafka,
        ingest: { rows, rows_per_second: to > from ? rows / ((to.getTime() - from.getTime()) / 1000) : 0 },
        dead_letters: {
          total: s.by_reason.reduce((n, r) => n + r.n, 0),
          by_reason: s.by_reason.map((r) => ({ reason_code: r.reason_code, count: r.n })),
          recent: s.recent,
        },
      }
    },
  )
}
