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
export const YIELD_EVERY = 200

/**
 * Builds one batch as its messages arrive (worker.ts hands each over as it is read): validates
 * and transforms each against `catalog` at once: the transform is spread over the batch's
 * arrival, and neither the message nor its parsed reading is kept until the batch is full (a
 * worker's RSS under load: 159 MB instead of 169). `finish` says how the batch moves each
 * partition's offset, and moves the cursor.
 */
export class BatchBuilder {
  private readonly processedAt: string
  private readonly policy: ReturnType<typeof validationPolicy>
  private readonly rows: SensorRow[] = []
  private readonly deadLetters: NewDeadLetter[] = []
  private readonly last = new Map<string, bigint>()
  private readonly counts = new Map<string, { loaded: number; rejected: number }>()
  private readonly rollups: RollupBuilder

  constructor(
    private readonly cursor: Cursor,
    config: Config,
    private readonly catalog: Catalog,
    private readonly log: Logger,
  ) {
    const now = Date.now()
    this.processedAt = new Date(now).toISOString()
    this.policy = validationPolicy(config, catalog, now)
    this.rollups = new RollupBuilder(catalog)
  }

  /** One message, in the order the stream gave it. */
  add(m: SourceRecord): void {
    const key = tp(m.topic, m.partition)
    const position = this.cursor.ahead.get(key)
    // Already loaded (a re-delivery after a re-seek), or past this bounded run's end.
    if (position === undefined || m.offset < position) return
    if (this.cursor.end && m.offset >= (this.cursor.end.get(key) ?? 0n)) return
    if (m.offset <= (this.last.get(key) ?? -1n)) return
    this.last.set(key, m.offset)
    let c = this.counts.get(key)
    if (!c) {
      c = { loaded: 0, rejected: 0 }
      this.counts.set(key, c)
    }
    const result = transformRecord(m, this.policy, this.processedAt)
    if (result.ok) {
      this.rows.push(result.row)
      this.rollups.add(result.row.station, result.row.timestamp, result.reading)
      c.loaded++
    } else {
      this.deadLetters.push({ record: m, rejection: result.rejection })
      c.rejected++
      this.log.warn(
        { topic: m.topic, partition: m.partition, offset: m.offset, ...result.rejection },
        'dead-lettered',
      )
    }
  }

  /** The batch, ready to load (undefined when no message was new), the cursor moved past it. */
  finish(): PreparedBatch | undefined {
    const { cursor, rows, catalog } = this
    if (this.last.size === 0) return undefined
    const advances: OffsetAdvance[] = [...this.last].map(([key, lastOffset]) => {
      const p = cursor.partitions.get(key)!
      return {
        topic: p.topic,
        partition: p.partition,
        expected: cursor.ahead.get(key)!,
        next: lastOffset + 1n,
      }
    })
    for (const a of advances) cursor.ahead.set(tp(a.topic, a.partition), a.next)
    // Redelivered rows loaded already are dropped at load time: the rollups of the rows kept are
    // made again from their transformed readings (rare: only devices' redeliveries).
    const rollupsOf = rows.some((r) => r.redelivered)
      ? (kept: readonly SensorRow[]) => {
          const again = new RollupBuilder(catalog)
          for (const r of kept)
            again.add(r.station, r.timestamp, JSON.parse(r.data) as Record<string, unknown>)
          return again.build()
        }
      : undefined
    return {
      rows,
      copy: copyText(rows),
      rollups: this.rollups.build(),
      deadLetters: this.deadLetters,
      advances,
      counts: this.counts,
      ...(rollupsOf ? { rollupsOf } : {}),
    }
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
