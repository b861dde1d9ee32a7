export { type RetrySummary, retryDeadLetters } from './dead-letters.ts'
export { follow, runBounded } from './modes.ts'
export {
  type LoadRow,
  type ReasonCode,
  reasonCodes,
  round,
  type SourceRecord,
  transformRecord,
  type ValidationPolicy,
  validationPolicy,
} from './transform.ts'
export type { PartitionSummary, RunSummary } from './worker.ts'
export { runBoundedProcesses, runWorkerProcesses } from './workers.ts'
