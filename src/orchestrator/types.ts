import type { Config } from '../config/index.ts'
import type { KafkaSettings } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import type { Supervisor } from '../shared/supervisor.ts'

/** What `stack up` hands the orchestrator it picked, once Kafka and PostgreSQL are up. */
export interface OrchestratorContext {
  config: Config
  kafkaBrokers: string
  /** the owner's URL (Airflow's metadata database, its maintenance task) */
  databaseUrl: string
  /** the ETL's own, least-privileged URL (role evf_etl) */
  etlDatabaseUrl: string
  /** the ETL's own Kafka login (user `etl` on the embedded broker) */
  etlKafka: KafkaSettings
  /** the environment of the stack's `evf` components, with the ETL's Kafka login */
  env: Record<string, string>
  supervisor: Supervisor
  logsDir: string
  log: Logger
}

/**
 * Who runs the ETL under `stack up`: the built-in scheduler (`builtin.ts`) or Apache Airflow
 * (`airflow.ts`). `start` launches its processes as supervised children of the stack and
 * resolves with what the start-up banner says about it.
 */
export interface Orchestrator {
  start(ctx: OrchestratorContext): Promise<{ etl: string; lines: string[] }>
}
