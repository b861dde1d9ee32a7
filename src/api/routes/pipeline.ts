import { type Pool, staleSensors } from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { alarmsStatus, CURRENT_RATE_SEC, type EvaluatorOf, pipelineStatus } from '../pipeline-status.ts'
import { answers } from '../problems.ts'
import { PipelineStatus, WindowQuery } from '../schemas.ts'
import { sourcesStatus } from '../sources.ts'
import type { Api } from '../types.ts'

/** `/pipeline/status` for people and the dashboard (`/metrics`, for Prometheus, is in metrics.ts). */
export function pipelineRoutes(
  app: Api,
  pool: Pool,
  stallSec: number,
  evaluator: EvaluatorOf | undefined,
  replica?: Pool,
): void {
  app.get(
    '/pipeline/status',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'ETL health: last commit and run, lag per partition, ingest in the window, dead letters by reason; alarms by state and severity, and their notifications’ delivery',
        description: 'Default window: the last 15 minutes.',
        tags: ['ops'],
        querystring: WindowQuery,
        response: answers({ 200: PipelineStatus }),
      },
    },
    async (req) => {
      const { from, to } = windowOf(req.query, 15 * 60_000)
      const s = await pipelineStatus(pool, from, to, stallSec, replica)
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
        alarms: alarmsStatus(s, evaluator?.()),
        sources: await sourcesStatus(pool),
        stale_sensors: (await staleSensors(pool)).map((x) => ({
          station: x.station,
          sensor_id: x.sensorId,
          since: x.since.toISOString(),
          reason: x.reason,
        })),
      }
    },
  )
}
