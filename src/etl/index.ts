export { follow, runBounded, schedule } from './modes.ts'
export { type LoadRow, type ReasonCode, round, type SourceRecord, transformRecord } from './transform.ts'
export type { PartitionSummary, RunSummary } from './worker.ts'
