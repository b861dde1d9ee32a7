import { setImmediate as yieldToIo } from 'node:timers/promises'
import type { Catalog, SourceRecord } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import {
  copyText,
  type LoadBatch,
  type NewDeadLetter,
  type OffsetAdvance,
  type SensorRow,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { RollupBuilder } from './rollups.ts'
import { transformRecord, validationPolicy } from './transform.ts'

/**
 * What a batch holds, decided before it is loaded: which of the consumed messages are new, what
 * each becomes (a row or a dead letter), and how each partition's stored offset moves. Pure
 * bookkeeping over the worker's positions (worker.ts consumes and commits).
 */

/** A batch ready to load, and what it adds to each partition's counts once committed. */
export interface PreparedBatch extends LoadBatch {
  counts: Map<string, { loaded: number; rejected: number }>
}

/** The key of a partition in the worker's maps. */
export const tp = (topic: string, partition: number) => `${topic}:${partition}`

/** Where a worker stands, per `topic:partition` (`tp`). */
export interface Cursor {
  /** positions once the batch in flight commits: where the next batch starts; moved here */
  ahead: Map<string, bigint>
  /** a bounded run's end offsets (exclusive); none when following */
  end: ReadonlyMap<string, bigint> | undefined
  /** the partitions the worker loads */
  partitions: ReadonlyMap<string, { topic: string; partition: number }>
}

/**
 * Records transformed between two yields to the event loop: the load of the batch before is a
 * series of round trips to PostgreSQL, and each one's reply waits for the transform to yield.
 */
const YIELD_EVERY = 200

/**
 * Validates and transforms a batch against `catalog`, and says how it moves each partition's
 * offset. Runs while the batch before is loaded, yielding every `YIELD_EVERY` records so that
 * the load's next statement leaves without waiting for the whole batch.
 */
export async function prepareBatch(
  batch: readonly SourceRecord[],
  cursor: Cursor,
  config: Config,
  catalog: Catalog,
  log: Logger,
): Promise<PreparedBatch | undefined> {
  if (batch.length === 0) return undefined
  const now = Date.now()
  const processedAt = new Date(now).toISOString()
  const policy = validationPolicy(config, catalog, now)
  const rows: SensorRow[] = []
  const deadLetters: NewDeadLetter[] = []
  const last = new Map<string, bigint>()
  const counts = new Map<string, { loaded: number; rejected: number }>()
  const rollups = new RollupBuilder(catalog)
  // Each row's reading, for the rollups again if the load drops a redelivered row loaded already.
  const readings: Readonly<Record<string, unknown>>[] = []
  for (const [i, m] of batch.entries()) {
    if (i % YIELD_EVERY === YIELD_EVERY - 1) await yieldToIo()
    const key = tp(m.topic, m.partition)
    const position = cursor.ahead.get(key)
    // Already loaded (a re-delivery after a re-seek), or past this bounded run's end.
    if (position === undefined || m.offset < position) continue
    if (cursor.end && m.offset >= (cursor.end.get(key) ?? 0n)) continue
    if (m.offset <= (last.get(key) ?? -1n)) continue
    last.set(key, m.offset)
    let c = counts.get(key)
    if (!c) {
      c = { loaded: 0, rejected: 0 }
      counts.set(key, c)
    }
    const result = transformRecord(m, policy, processedAt)
    if (result.ok) {
      rows.push(result.row)
      rollups.add(result.row.station, result.row.timestamp, result.reading)
      readings.push(result.reading)
      c.loaded++
    } else {
      deadLetters.push({ record: m, rejection: result.rejection })
      c.rejected++
      log.warn(
        { topic: m.topic, partition: m.partition, offset: m.offset, ...result.rejection },
        'dead-lettered',
      )
    }
  }
  if (last.size === 0) return undefined
  const advances: OffsetAdvance[] = [...last].map(([key, lastOffset]) => {
    const p = cursor.partitions.get(key)!
    return { topic: p.topic, partition: p.partition, expected: cursor.ahead.get(key)!, next: lastOffset + 1n }
  })
  for (const a of advances) cursor.ahead.set(tp(a.topic, a.partition), a.next)
  const rollupsOf = rows.some((r) => r.redelivered)
    ? (kept: readonly SensorRow[]) => {
        const again = new RollupBuilder(catalog)
        const keep = new Set(kept)
        for (const [i, r] of rows.entries()) if (keep.has(r)) again.add(r.station, r.timestamp, readings[i]!)
        return again.build()
      }
    : undefined
  return {
    rows,
    copy: copyText(rows),
    rollups: rollups.build(),
    deadLetters,
    advances,
    counts,
    ...(rollupsOf ? { rollupsOf } : {}),
  }
}

/**
 * Positions past what the fetches brought but no message carried: a transaction's commit or
 * abort marker, an aborted transaction's records. Called when the stream's buffer is empty, so
 * every message below each partition's `fetchedTo` (where the consumer's last fetch ended) has
 * been read and its position is past it (within a bounded run's end). Without this, a
 * read-committed worker stays one offset short of the log end after a transaction: a bounded run
 * never ends, and the lag never reaches 0.
 */
export function pastUnread(
  cursor: Cursor,
  fetchedTo: (topic: string, partition: number) => bigint | undefined,
): PreparedBatch | undefined {
  const advances: OffsetAdvance[] = []
  for (const [key, ahead] of cursor.ahead) {
    const p = cursor.partitions.get(key)
    let to = p && fetchedTo(p.topic, p.partition)
    if (!p || !to) continue
    const end = cursor.end?.get(key)
    if (end !== undefined && to > end) to = end
    if (to > ahead) advances.push({ topic: p.topic, partition: p.partition, expected: ahead, next: to })
  }
  if (advances.length === 0) return undefined
  for (const a of advances) cursor.ahead.set(tp(a.topic, a.partition), a.next)
  return { rows: [], rollups: { minute: [], hour: [] }, deadLetters: [], advances, counts: new Map() }
}
