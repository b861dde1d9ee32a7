/**
 * PostgreSQL data access: pools, migrations, maintenance, and in queries/ every statement the
 * ETL, the API, the CLI and the embedded servers' start-up run (the servers are services/).
 */
export {
  type ApplyResult,
  applyCatalog,
  applyCatalogFile,
  CatalogFollower,
  loadCatalog,
} from './catalog.ts'
export { type MaintenanceSummary, maintain, PARTITION_DAYS_AHEAD } from './maintain.ts'
export { migrate, readMigrations } from './migrate.ts'
export { createPool, inTransaction, type Pool, withClient } from './pool.ts'
export * from './queries/index.ts'
