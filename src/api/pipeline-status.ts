import {
  type Activity,
  activity,
  type EtlHealth,
  etlHealth,
  kafkaNodes,
  type Pool,
  type ReplicaLag,
  replicaLag,
} from '../db/index.ts'
import type { PipelineStatus } from './schemas.ts'

/**
 * The pipeline's state composed from several reads, for `/pipeline/status` (people and the
 * dashboard) and `/metrics` (Prometheus): the ETL's health, what was loaded and dead-lettered in
 * a window, the standby's lag, the Kafka nodes.
 */

/** The current ingest rate is over the commits of the last this many seconds. */
export const CURRENT_RATE_SEC = 10

export interface Status extends Activity {
  etl: EtlHealth
  /** the standby the API reads from, when there is one */
  replica: ReplicaLag | null
  kafka: PipelineStatus['kafka']
}

export async function pipelineStatus(
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
