export { DATABASE, type EmbeddedDatabase, freePort, startEmbeddedPostgres } from './embedded.ts'
export { type MaintenanceSummary, maintain } from './maintain.ts'
export { migrate, readMigrations } from './migrate.ts'
export { createPool, type Pool, withClient } from './pool.ts'
