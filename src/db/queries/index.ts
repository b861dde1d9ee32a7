/**
 * Every SQL statement the ETL, the API and the CLI run, each once, as a named, typed function,
 * grouped by what it reads or writes, the migrator's and maintenance's included. Nothing else
 * writes SQL but the embedded servers' own set-up.
 */
export {
  addSilence,
  alarmsToRepeat,
  type DeliveryStats,
  deliveryStats,
  dueMessages,
  enqueue,
  expireSilence,
  listSilences,
  markFailed,
  markNotified,
  markRouted,
  markSent,
  type NewOutboxMessage,
  type NewSilence,
  type OutboxRow,
  type RepeatDue,
  recentDeliveries,
  type SilenceRow,
  unroutedEvents,
} from './alarm-outbox.ts'
export { type AlarmCount, alarmCounts, alarmStateOf, ruleById } from './alarm-views.ts'
export {
  ALARMS_CHANNEL,
  type AlarmEventRow,
  type AlarmHealth,
  type AlarmRow,
  type AlarmView,
  type AlarmWrite,
  alarmCursor,
  alarmHealth,
  alarmHistory,
  alarmsDue,
  checkLead,
  deadLettersLastMinute,
  deleteRule,
  type EvalReading,
  type HistoryFilter,
  heartbeat,
  inSourceOrder,
  insertEvents,
  listAlarms,
  listRules,
  loadAlarms,
  loadedPositions,
  lockAlarms,
  type NewAlarmEvent,
  type NewRule,
  projection,
  putRule,
  type RuleRow,
  readingsForAlarms,
  saveCursor,
  saveEval,
  seedRules,
  takeLead,
  writeAlarms,
} from './alarms.ts'
export {
  type BlockedPartition,
  blockedPartitions,
  recordBlocked,
  type Skipped,
  skipBlocked,
} from './blocked.ts'
export {
  CATALOG_CHANNEL,
  catalogVersion,
  lastAppliedFrom,
  lockCatalog,
  notifyCatalog,
  readCatalogState,
  writeCatalogVersion,
  writeDerived,
} from './catalog.ts'
export { ensureDatabase } from './databases.ts'
export {
  type DeadLetterFilter,
  type DeadLetterRow,
  insertRedriven,
  listDeadLetters,
  lockDeadLetters,
  markResolved,
  recordStillRejected,
  type StoredDeadLetter,
} from './dead-letters.ts'
export { type EtlHealth, etlHealth, type PartitionHealth } from './etl-health.ts'
export {
  type IngestSourceRow,
  type IngestSourceState,
  ingestSources,
  recordIngestSources,
  setSensorStale,
  staleSensors,
} from './ingest.ts'
export {
  type KafkaNode,
  type KafkaNodes,
  kafkaNodes,
  kafkaNodesRecorder,
  recordKafkaNodes,
} from './kafka-nodes.ts'
export {
  copyText,
  type LoadBatch,
  loadBatch,
  type NewDeadLetter,
  type OffsetAdvance,
  type SensorRow,
} from './load.ts'
export {
  decodeLoaded,
  encodeLoaded,
  LOADED_CHANNEL,
  type LoadedListener,
  type LoadedRange,
  listenChannel,
  listenLoaded,
} from './loaded.ts'
export { initOffsets, readPositions, recordLogEnds } from './offsets.ts'
export {
  type ExportRequest,
  exportReadings,
  type LiveReading,
  latestReading,
  type ReadingFilter,
  type ReadingPage,
  readingPage,
  readingsAfter,
  readingsOfRanges,
} from './readings.ts'
export { type ReplicaLag, replicaLag } from './replica.ts'
export { type Aggregate, mergeRollups, type Rollups } from './rollups.ts'
export { finishRun, insertRun, type RunMode, type RunOutcome, updateRunCounts } from './runs.ts'
export {
  dataDirectory,
  ensureReplicationRole,
  ensureReplicationSlot,
  lowLevelBackup,
  setRolePassword,
} from './servers.ts'
export {
  BUCKET_SECONDS,
  type Bucket,
  type QualityCounts,
  qualityCounts,
  readingCounts,
  timeseriesPoints,
} from './stats.ts'
export {
  type Activity,
  activity,
  type LastRun,
  type RecentDeadLetter,
  type Totals,
  totals,
} from './status.ts'
export {
  consumeLogin,
  insertToken,
  listTokens,
  type NewToken,
  revokeLogins,
  revokeToken,
  type TokenInfo,
  type TokenRow,
  tokenById,
  touchTokens,
} from './tokens.ts'
export { transaction } from './transaction.ts'
