export {
  AIRFLOW_PROCESSES,
  type AirflowEnvOptions,
  airflowBin,
  airflowEnv,
  airflowHome,
  DAG_ID,
  ensureInstalled,
  ensureMetadataDatabase,
  installAirflow,
  metadataUrl,
  migrateMetadata,
  uiCredentials,
} from './airflow.ts'
