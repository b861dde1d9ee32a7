import {
  type Activity,
  type AlarmCount,
  type AlarmHealth,
  activity,
  alarmCounts,
  alarmHealth,
  type DeliveryStats,
  deliveryStats,
  type EtlHealth,
  etlHealth,
  kafkaNodes,
  type Pool,
  type ReplicaLag,
  replicaLag,
} from '../db/index.ts'
import type { PipelineStatus } from './schemas.ts'
import { EVALUATOR_STALE_SEC } from './schemas-alarms.ts'

/**
 * The pipeline's state composed from several reads, for `/pipeline/status` (people and the
 * dashboard) and `/metrics` (Prometheus): the ETL's health, what was loaded and dead-lettered in
 * a window, the standby's lag, the Kafka nodes, the alarms and their notifications.
 */

/** The current ingest rate is over the commits of the last this many seconds. */
export const CURRENT_RATE_SEC = 10

export interface Status extends Activity {
  etl: EtlHealth
  /** the standby the API reads from, when there is one */
  replica: ReplicaLag | null
  kafka: PipelineStatus['kafka']
  alarms: { counts: AlarmCount[]; deliveries: DeliveryStats[]; health: AlarmHealth }
}

/** The alarm evaluator this API process runs (EVF_ALARM_EVALUATOR=api), or undefined. */
export type EvaluatorOf = () =>
  | {
      leading: boolean
      stats: { evaluated: number; transitions: number; errors: number; lastError: string }
    }
  | undefined

export async function pipelineStatus(
  pool: Pool,
  from: Date,
  to: Date,
  stallSec: number,
  replica?: Pool,
): Promise<Status> {
  const [done, etl, lag, nodes, counts, deliveries, health] = await Promise.all([
    activity(pool, from, to, CURRENT_RATE_SEC),
    etlHealth(pool, stallSec),
    replica ? replicaLag(replica) : null,
    kafkaNodes(pool),
    alarmCounts(pool),
    deliveryStats(pool),
    alarmHealth(pool),
  ])
  return { ...done, etl, replica: lag, kafka: nodes, alarms: { counts, deliveries, health } }
}

/** The alarms' part of `/pipeline/status`. */
export function alarmsStatus(s: Status, e: ReturnType<EvaluatorOf>): PipelineStatus['alarms'] {
  return {
    counts: s.alarms.counts.map((c) => ({
      state: c.state as PipelineStatus['alarms']['counts'][number]['state'],
      severity: c.severity as PipelineStatus['alarms']['counts'][number]['severity'],
      count: c.n,
    })),
    deliveries: s.alarms.deliveries.map((d) => ({
      receiver: d.receiver,
      status: d.status,
      messages: d.messages,
      attempts: d.attempts ?? 0,
      last_error: d.last_error,
      oldest_pending: d.oldest_pending === null ? null : new Date(d.oldest_pending).toISOString(),
    })),
    evaluation: evaluation(s.alarms.health),
    // null: no evaluator in this process (or not started yet)
    evaluator: e
      ? {
          leader: e.leading,
          evaluated: e.stats.evaluated,
          transitions: e.stats.transitions,
          errors: e.stats.errors,
          last_error: e.stats.lastError || null,
        }
      : null,
  }
}

/** Whether alarms are being evaluated, by whichever process leads (the watchdog's view). */
export function evaluation(h: AlarmHealth): PipelineStatus['alarms']['evaluation'] {
  return {
    evaluating: h.heartbeat_age_sec !== null && h.heartbeat_age_sec <= EVALUATOR_STALE_SEC,
    holder: h.holder,
    heartbeat_age_sec: h.heartbeat_age_sec === null ? null : Math.round(h.heartbeat_age_sec * 10) / 10,
    behind: Math.round(h.behind),
  }
}
