export { type RetrySummary, retryDeadLetters } from './dead-letters.ts'
export { follow, runBounded, topicsToLoad } from './modes.ts'
export {
  type ReasonCode,
  reasonCodes,
  round,
  transformRecord,
  type ValidationPolicy,
  validationPolicy,
} from './transform.ts'
export type { PartitionSummary, RunSummary } from './worker.ts'
export { runBoundedProcesses, runWorkerProcesses } from './workers.ts'
