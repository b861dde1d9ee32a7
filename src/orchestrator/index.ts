export {
  AIRFLOW_PROCESSES,
  type AirflowEnvOptions,
  airflowBin,
  airflowEnv,
  airflowHome,
  DAG_ID,
  ensureMetadataDatabase,
  installAirflow,
  metadataUrl,
  migrateMetadata,
  uiCredentials,
} from './airflow.ts'
