/**
 * PostgreSQL: the servers and the schema here (the embedded primary and its standby, pools,
 * the migrator, maintenance, roles); every SQL statement, theirs included, in queries/.
 */
export {
  DATABASE,
  type EmbeddedDatabase,
  freePort,
  startEmbeddedPostgres,
  stopOrphan as stopOrphanPostgres,
} from './embedded.ts'
export { type MaintenanceSummary, maintain, PARTITION_DAYS_AHEAD } from './maintain.ts'
export { migrate, readMigrations } from './migrate.ts'
export { createPool, inTransaction, type Pool, withClient } from './pool.ts'
export * from './queries/index.ts'
export { provisionRoleLogins, ROLES, type Role, type RoleUrls } from './roles.ts'
export { startStandby } from './standby.ts'
