export {
  type DeadLetterFilter,
  type DeadLetterRow,
  deadLetterParams,
  deadLetterWhere,
  listDeadLetters,
} from './dead-letters.ts'
export { DATABASE, type EmbeddedDatabase, freePort, startEmbeddedPostgres } from './embedded.ts'
export { type EtlHealth, etlHealth, type PartitionHealth } from './etl-health.ts'
export {
  type KafkaNode,
  type KafkaNodes,
  kafkaNodes,
  kafkaNodesRecorder,
  recordKafkaNodes,
} from './kafka-nodes.ts'
export { decodeLoaded, encodeLoaded, LOADED_CHANNEL, type LoadedRange } from './loaded.ts'
export { type MaintenanceSummary, maintain, PARTITION_DAYS_AHEAD } from './maintain.ts'
export { migrate, readMigrations } from './migrate.ts'
export { initOffsets, readPositions, recordLogEnds } from './offsets.ts'
export { createPool, type Pool, withClient } from './pool.ts'
export { type ReplicaLag, replicaLag } from './replica.ts'
export { provisionRoleLogins, ROLES, type Role, type RoleUrls } from './roles.ts'
export { startStandby } from './standby.ts'
export {
  CREDENTIAL,
  consumeLogin,
  issueToken,
  listTokens,
  newLoginToken,
  type Refusal,
  revokeToken,
  SCOPES,
  type Scope,
  type TokenInfo,
  type TokenKind,
  touchTokens,
  type Verified,
  verifyToken,
} from './tokens.ts'
export { biColumn } from './views.ts'
