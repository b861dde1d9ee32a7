export { DATABASE, type EmbeddedDatabase, freePort, startEmbeddedPostgres } from './embedded.ts'
export { type EtlHealth, etlHealth, type PartitionHealth, recordLogEnds } from './etl-health.ts'
export { type MaintenanceSummary, maintain, PARTITION_DAYS_AHEAD } from './maintain.ts'
export { migrate, readMigrations } from './migrate.ts'
export { createPool, type Pool, withClient } from './pool.ts'
export { provisionRoleLogins, ROLES, type Role, type RoleUrls } from './roles.ts'
export { biColumn } from './views.ts'

/** The channel each load transaction notifies with the source ranges it committed; the API listens. */
export const LOADED_CHANNEL = 'evf_loaded'
