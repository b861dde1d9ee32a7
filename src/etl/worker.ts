import { randomUUID } from 'node:crypto'
import type { Consumer, Message, MessagesStream } from '@platformatic/kafka'
import type { Config } from '../config/index.ts'
import {
  initOffsets,
  type LoadBatch,
  loadBatch,
  type NewDeadLetter,
  type OffsetAdvance,
  type Pool,
  readPositions,
  recordLogEnds,
  withClient,
} from '../db/index.ts'
import { coerceError, PipelineError } from '../errors/index.ts'
import { createAdmin, createConsumer, ensureTopics } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { BatchReader } from './batch.ts'
import { RollupBuilder } from './rollups.ts'
import { type LoadRow, transformRecord, validationPolicy } from './transform.ts'

const EARLIEST = -2n
const IDLE_MS = 500
/** how often the log-end offsets are written to etl_offsets, for the lag on /pipeline/status */
const LAG_EVERY_MS = 5000
const MAX_FENCED_IN_A_ROW = 10

export interface PartitionSummary {
  topic: string
  partition: number
  /** first offset this run looked at */
  from: string
  /** offset the run stopped at (exclusive) */
  to: string
  loaded: number
  rejected: number
  /** from the start of the run until this partition reached its end (bounded runs) */
  durationMs: number
}

export interface RunSummary {
  mode: 'bounded' | 'continuous'
  status: 'ok' | 'aborted'
  startedAt: string
  durationMs: number
  loaded: number
  rejected: number
  batches: number
  fencedRetries: number
  /** restarts after Kafka or PostgreSQL went away */
  retries: number
  partitions: PartitionSummary[]
}

export interface WorkerOptions {
  /** stop at the end offsets seen at start (`etl run`), or follow the topics (`etl follow`) */
  bounded: boolean
  topics: string[]
}

type Msg = Message<Buffer, Buffer, Buffer, Buffer>

/** A batch ready to load, and what it adds to each partition's counts once committed. */
interface PreparedBatch extends LoadBatch {
  counts: Map<string, { loaded: number; rejected: number }>
}
const tp = (topic: string, partition: number) => `${topic}:${partition}`

/**
 * One ETL worker: consume ▸ transform ▸ load, exactly once. Positions live in PostgreSQL and
 * advance in the transaction that writes the rows; Kafka's own group offsets are not used. A
 * bounded run uses a consumer group of its own, so it always owns all of its topics' partitions;
 * continuous workers share `etlGroupId` and split the partitions between them.
 */
export class EtlWorker {
  /** committed positions: the next offset to load, per `topic:partition`, as PostgreSQL holds it */
  private readonly positions = new Map<string, bigint>()
  /** positions once the batch in flight commits: where the next batch starts */
  private ahead = new Map<string, bigint>()
  private readonly summary = new Map<string, PartitionSummary>()
  private end: Map<string, bigint> | undefined
  private batches = 0
  private fencedRetries = 0
  private readonly startedAt = Date.now()
  /** restarts after a failure, counted by `runBounded` */
  retries = 0

  constructor(
    private readonly config: Config,
    private readonly pool: Pool,
    private readonly log: Logger,
    private readonly opts: WorkerOptions,
  ) {}

  /**
   * Loads until done (bounded) or aborted. May be called again after it threw (the broker or the
   * database went away): positions are read again from PostgreSQL, while the end offsets and
   * the summary of a bounded run carry over.
   */
  async run(signal?: AbortSignal): Promise<RunSummary> {
    const groupId = this.opts.bounded
      ? `${this.config.etlGroupId}-run-${randomUUID()}`
      : this.config.etlGroupId
    const consumer = createConsumer(this.config, `evf-etl-${process.pid}`, groupId)
    const lagTimer = this.opts.bounded
      ? setInterval(() => void this.recordEndOffsets(consumer), LAG_EVERY_MS)
      : undefined
    try {
      await this.start(consumer)
      if (this.opts.bounded) await this.recordEndOffsets(consumer)
      let fencedInARow = 0
      while (!signal?.aborted && !this.done()) {
        const stream = await consumer.consume({
          topics: this.opts.topics,
          mode: 'manual',
          autocommit: false,
          offsets: [...this.positions].map(([key, offset]) => {
            const i = key.lastIndexOf(':')
            return { topic: key.slice(0, i), partition: Number(key.slice(i + 1)), offset }
          }),
        })
        const batchesBefore = this.batches
        try {
          const outcome = await this.consume(stream, signal)
          if (outcome !== 'fenced') break
        } finally {
          await stream.close().catch(() => undefined)
        }
        // Another worker moved a partition: start again from what PostgreSQL says.
        this.fencedRetries++
        fencedInARow = this.batches > batchesBefore ? 1 : fencedInARow + 1
        if (this.opts.bounded && fencedInARow >= MAX_FENCED_IN_A_ROW) {
          throw new PipelineError(
            'OFFSET_FENCED',
            `fenced ${fencedInARow} times in a row without progress: another ETL keeps loading these partitions`,
          )
        }
        await this.reloadPositions()
      }
    } finally {
      clearInterval(lagTimer)
      await consumer.close().catch(() => undefined)
    }
    return this.summarize(signal)
  }

  /** Rows loaded and dead-lettered so far by this worker. */
  counts(): { loaded: number; rejected: number } {
    let loaded = 0
    let rejected = 0
    for (const p of this.summary.values()) {
      loaded += p.loaded
      rejected += p.rejected
    }
    return { loaded, rejected }
  }

  /**
   * Writes each partition's log-end offset next to its stored position, so readers of the
   * database (the API) know the lag without talking to Kafka. Best effort: a failure is logged.
   * A continuous ETL leaves this to its watchdog, which also watches for a stall.
   */
  private async recordEndOffsets(consumer: Consumer): Promise<void> {
    try {
      await recordLogEnds(this.pool, await consumer.listOffsets({ topics: this.opts.topics }), {
        watch: false,
      })
    } catch (error) {
      this.log.debug({ err: String(error) }, 'could not record the end offsets')
    }
  }

  private summarize(signal?: AbortSignal): RunSummary {
    const partitions = [...this.summary.values()].map((p) => ({
      ...p,
      to: String(this.positions.get(tp(p.topic, p.partition)) ?? p.from),
    }))
    return {
      mode: this.opts.bounded ? 'bounded' : 'continuous',
      status: signal?.aborted && !this.done() ? 'aborted' : 'ok',
      startedAt: new Date(this.startedAt).toISOString(),
      durationMs: Date.now() - this.startedAt,
      ...this.counts(),
      batches: this.batches,
      fencedRetries: this.fencedRetries,
      retries: this.retries,
      partitions,
    }
  }

  private async start(consumer: Consumer): Promise<void> {
    // Only lists them when they exist (`stack up` creates them as admin): no CreateTopics needed.
    const admin = createAdmin(this.config, `evf-etl-admin-${process.pid}`)
    try {
      await ensureTopics(
        admin,
        this.opts.topics,
        this.config.topicPartitions,
        this.log,
        this.config.kafkaUsername,
      )
    } finally {
      await admin.close()
    }
    const earliest = await consumer.listOffsets({ topics: this.opts.topics, timestamp: EARLIEST })
    if (this.opts.bounded && !this.end) {
      const latest = await consumer.listOffsets({ topics: this.opts.topics })
      const end = new Map<string, bigint>()
      for (const [topic, offsets] of latest) {
        offsets.forEach((o, p) => {
          end.set(tp(topic, p), o)
        })
      }
      this.end = end
    }
    const stored = await initOffsets(this.pool, earliest)
    for (const [topic, offsets] of earliest) {
      offsets.forEach((first, partition) => {
        const key = tp(topic, partition)
        const position = stored.get(key) ?? first
        if (position < first) {
          this.log.warn(
            { topic, partition, position, first },
            'messages were deleted by retention before loading',
          )
        }
        this.positions.set(key, position)
        if (!this.summary.has(key)) {
          this.summary.set(key, {
            topic,
            partition,
            from: String(position),
            to: '',
            loaded: 0,
            rejected: 0,
            durationMs: 0,
          })
        }
      })
    }
  }

  private async reloadPositions(): Promise<void> {
    const stored = await readPositions(this.pool, this.opts.topics)
    for (const [key, position] of stored) this.positions.set(key, position)
    this.log.warn({ positions: stored.size }, 'fenced by another worker: re-seeking from stored offsets')
  }

  /** True when a bounded run has reached (in `positions`) the end offsets it saw at start. */
  private done(positions = this.positions): boolean {
    if (!this.end) return false
    for (const [key, end] of this.end) if ((positions.get(key) ?? 0n) < end) return false
    return true
  }

  /**
   * Double-buffered: while batch N is being written by PostgreSQL, batch N+1 is consumed and
   * transformed (against the positions N will leave), so Node and the database work at the same
   * time. Commits stay strictly in order on one connection; if N fails, N+1 is dropped.
   */
  private async consume(stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>, signal?: AbortSignal) {
    const { etlBatchSize, etlLingerMs } = this.config
    this.ahead = new Map(this.positions)
    const reader = new BatchReader<Msg>(stream)
    let inflight: Promise<void> | undefined
    const settle = async (): Promise<'fenced' | undefined> => {
      if (!inflight) return undefined
      try {
        await inflight
      } catch (error) {
        const e = coerceError(error)
        if (e instanceof PipelineError && e.code === 'OFFSET_FENCED') return 'fenced'
        throw e
      } finally {
        inflight = undefined
      }
      return undefined
    }
    try {
      while (!signal?.aborted && !this.done(this.positions)) {
        const batch = this.done(this.ahead)
          ? []
          : await reader.next(etlBatchSize, etlLingerMs, IDLE_MS, signal)
        const prepared = this.transform(batch)
        if ((await settle()) === 'fenced') return 'fenced'
        if (prepared) {
          inflight = this.commit(prepared)
          inflight.catch(() => undefined) // awaited by settle(); this only marks it handled meanwhile
        }
      }
      if ((await settle()) === 'fenced') return 'fenced'
      return 'done'
    } finally {
      reader.close()
    }
  }

  /** Validates and transforms a batch, and says how it moves each partition's offset. */
  private transform(batch: Msg[]): PreparedBatch | undefined {
    if (batch.length === 0) return undefined
    const now = Date.now()
    const processedAt = new Date(now).toISOString()
    const policy = validationPolicy(this.config, now)
    const rows: LoadRow[] = []
    const deadLetters: NewDeadLetter[] = []
    const last = new Map<string, bigint>()
    const counts = new Map<string, { loaded: number; rejected: number }>()
    const rollups = new RollupBuilder()
    for (const m of batch) {
      const key = tp(m.topic, m.partition)
      const position = this.ahead.get(key)
      // Already loaded (a re-delivery after a re-seek), or past this bounded run's end.
      if (position === undefined || m.offset < position) continue
      if (this.end && m.offset >= (this.end.get(key) ?? 0n)) continue
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
        c.loaded++
      } else {
        deadLetters.push({ record: m, rejection: result.rejection })
        c.rejected++
        this.log.warn(
          { topic: m.topic, partition: m.partition, offset: m.offset, ...result.rejection },
          'dead-lettered',
        )
      }
    }
    if (last.size === 0) return undefined
    const advances: OffsetAdvance[] = [...last].map(([key, lastOffset]) => {
      const s = this.summary.get(key)!
      return { topic: s.topic, partition: s.partition, expected: this.ahead.get(key)!, next: lastOffset + 1n }
    })
    for (const a of advances) this.ahead.set(tp(a.topic, a.partition), a.next)
    return { rows, rollups: rollups.build(), deadLetters, advances, counts }
  }

  private async commit(batch: PreparedBatch): Promise<void> {
    const { rows, deadLetters, advances, counts } = batch
    await withClient(this.pool, (client) => loadBatch(client, batch))
    this.batches++
    for (const a of advances) {
      const key = tp(a.topic, a.partition)
      this.positions.set(key, a.next)
      const end = this.end?.get(key)
      if (end !== undefined && a.next >= end) this.summary.get(key)!.durationMs = Date.now() - this.startedAt
    }
    for (const [key, c] of counts) {
      const s = this.summary.get(key)!
      s.loaded += c.loaded
      s.rejected += c.rejected
    }
    this.log.debug({ rows: rows.length, deadLetters: deadLetters.length }, 'batch committed')
  }
}
