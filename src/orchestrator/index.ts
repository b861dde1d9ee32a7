export {
  AIRFLOW_PROCESSES,
  type AirflowEnvOptions,
  airflow,
  airflowBin,
  airflowEnv,
  airflowHome,
  DAG_ID,
  installAirflow,
  metadataUrl,
  migrateMetadata,
  uiCredentials,
} from './airflow.ts'
export { builtin, type Maintenance, scheduleEtl, startMaintenance } from './builtin.ts'
export { type CronJob, cron } from './cron.ts'
export type { Orchestrator, OrchestratorContext } from './types.ts'
