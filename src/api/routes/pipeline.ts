import {
  type Activity,
  activity,
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

/** The current ingest rate is over the commits of the last this many seconds. */
export const CURRENT_RATE_SEC = 10

interface Status extends Activity {
  etl: EtlHealth
  /** the standby the API reads from, when there is one */
  replica: ReplicaLag | null
  kafka: PipelineStatus['kafka']
}

export async function status(
  pool: Pool,
  from: Date,
  to: Date,
  stallSec: number,
  replica?: Pool,
): Promise<Status> {
  const [done, etl, lag, nodes] = await Promise.all([
    activity(pool, from, to, CURRENT_RATE_SEC),
    etlHealth(pool, stallSec),
    replica ? replicaLag(replica) : null,
    kafkaNodes(pool),
  ])
  return { ...done, etl, replica: lag, kafka: nodes }
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
      const rows = s.ingested
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
        ingest: {
          rows,
          rows_per_second: to > from ? rows / ((to.getTime() - from.getTime()) / 1000) : 0,
          current_rows_per_second: s.recent_rows / CURRENT_RATE_SEC,
          current_sec: CURRENT_RATE_SEC,
        },
        dead_letters: {
          total: s.by_reason.reduce((n, r) => n + r.n, 0),
          by_reason: s.by_reason.map((r) => ({ reason_code: r.reason_code, count: r.n })),
          recent: s.recent,
        },
      }
    },
  )
}
