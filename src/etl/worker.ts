import { randomUUID } from 'node:crypto'
import type { Message, MessagesStream } from '@platformatic/kafka'
import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { initOffsets, loadBatch, type Pool, readPositions, recordLogEnds, withClient } from '../db/index.ts'
import { coerceError, PipelineError } from '../errors/index.ts'
import { createAdmin, createConsumer, type EvfConsumer, ensureTopics } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { BatchReader } from './batch.ts'
import { HeldPartitions } from './held.ts'
import { BatchBuilder, type Cursor, type PreparedBatch, pastUnread, tp, YIELD_EVERY } from './prepare.ts'

const EARLIEST = -2n
const IDLE_MS = 500
/** how often the log-end offsets are written to etl_offsets, for the lag on /pipeline/status */
const LAG_EVERY_MS = 5000
const MAX_FENCED_IN_A_ROW = 10
/** how often a worker holding a partition back looks whether `evf etl skip` has moved it */
const RELEASE_CHECK_MS = 2000

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
  /** the catalog each batch is validated against (read once per batch: it may change between) */
  catalog: () => Catalog
}

type Msg = Message<Buffer, Buffer, Buffer, Buffer>

/** While the Kafka client retries by itself, it is said at most this often. */
const RETRY_SAID_EVERY_MS = 5000

/**
 * The Kafka client retries a failed request itself (with fresh metadata), and its fetch nests the
 * metadata's retries in its own: an outage of tens of seconds passes without a failure reaching
 * the ETL's retry loop (modes.ts), which says what it waits for. So the client's retries are
 * said too, from a request's third try and at most every 5 s, as `waiting for Kafka`.
 */
function sayWhileKafkaRetries(consumer: EvfConsumer, log: Logger): void {
  let saidAt = 0
  consumer.on('client:performWithRetry:retry', (operation: string, attempt: number, retries: number) => {
    // A single retry is routine (a group coordinator still loading on a new broker, a leader
    // moving); from the third try on, Kafka is away.
    if (attempt < 2 || Date.now() - saidAt < RETRY_SAID_EVERY_MS) return
    saidAt = Date.now()
    log.warn(
      { code: 'KAFKA_UNREACHABLE', waitingFor: 'Kafka', operation, attempt: attempt + 1, of: retries },
      'waiting for Kafka: the client retries',
    )
  })
}

/**
 * One ETL worker: consume ▸ transform ▸ load, exactly once; what a batch holds is decided in
 * prepare.ts. Positions live in PostgreSQL and advance in the transaction that writes the rows;
 * Kafka's own group offsets are not used. A bounded run uses a consumer group of its own, so it
 * always owns all of its topics' partitions; continuous workers share `etlGroupId` and split the
 * partitions between them.
 */
export class EtlWorker {
  /** committed positions: the next offset to load, per `topic:partition`, as PostgreSQL holds it */
  private readonly positions = new Map<string, bigint>()
  /** positions once the batch in flight commits: where the next batch starts */
  private ahead = new Map<string, bigint>()
  private readonly summary = new Map<string, PartitionSummary>()
  private end: Map<string, bigint> | undefined
  /** topic ids by name, for the consumer's per-partition facts */
  private readonly topicIds = new Map<string, string>()
  private held: HeldPartitions | undefined
  private batches = 0
  private fencedRetries = 0
  private readonly startedAt = Date.now()
  /** restarts after a failure, counted by `runBounded` */
  retries = 0

  /** the topics it loads */
  get topics(): readonly string[] {
    return this.opts.topics
  }

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
    const held = new HeldPartitions(consumer, this.pool, this.log, this.opts.topics)
    this.held = held
    sayWhileKafkaRetries(consumer, this.log)
    const lagTimer = this.opts.bounded
      ? setInterval(() => void this.recordEndOffsets(consumer), LAG_EVERY_MS)
      : undefined
    const releaseTimer = setInterval(() => void held.checkReleased(), RELEASE_CHECK_MS)
    try {
      await this.start(consumer)
      if (this.opts.bounded) await this.recordEndOffsets(consumer)
      let fencedInARow = 0
      while (!signal?.aborted && !this.done()) {
        consumer.resetFetched()
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
        let outcome: Awaited<ReturnType<typeof this.consume>>
        try {
          outcome = await this.consume(stream, consumer, signal)
        } finally {
          await stream.close().catch(() => undefined)
        }
        if (outcome === 'done') break
        if (outcome === 'released') {
          held.released = false
          await this.reloadPositions('a held-back partition was skipped')
          continue
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
      clearInterval(releaseTimer)
      await consumer.close().catch(() => undefined)
    }
    // A bounded run loaded everything else; what it had to leave is this run's failure.
    if (this.opts.bounded && held.byKey.size > 0 && !signal?.aborted)
      throw new PipelineError(
        'KAFKA_UNDECODABLE_BATCH',
        `a record batch could not be decoded: ${held.describe()} held back (the other partitions were loaded); \`evf etl skip --topic … --partition …\` moves past it, keeping its bytes as a dead letter`,
      )
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
  private async recordEndOffsets(consumer: EvfConsumer): Promise<void> {
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

  private async start(consumer: EvfConsumer): Promise<void> {
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
    for (const [name, topic] of (await consumer.metadata({ topics: this.opts.topics })).topics)
      this.topicIds.set(name, topic.id)
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

  private async reloadPositions(why = 'fenced by another worker'): Promise<void> {
    const stored = await readPositions(this.pool, this.opts.topics)
    for (const [key, position] of stored) this.positions.set(key, position)
    this.log.warn({ positions: stored.size }, `${why}: re-seeking from stored offsets`)
  }

  /**
   * True when a bounded run has reached (in `positions`) the end offsets it saw at start, or, in a
   * partition held back at a batch it cannot decode, that batch.
   */
  private done(positions = this.positions): boolean {
    if (!this.end) return false
    for (const [key, end] of this.end) {
      const held = this.held?.stopAt(key)
      if ((positions.get(key) ?? 0n) < (held !== undefined && held < end ? held : end)) return false
    }
    return true
  }

  /**
   * Double-buffered: while batch N is being written by PostgreSQL, batch N+1 is consumed and
   * transformed, each message as it is read (against the positions N will leave), so Node and the
   * database work at the same time. Commits stay strictly in order on one connection; if N fails, N+1 is dropped.
   */
  private async consume(
    stream: MessagesStream<Buffer, Buffer, Buffer, Buffer>,
    consumer: EvfConsumer,
    signal?: AbortSignal,
  ): Promise<'done' | 'fenced' | 'released'> {
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
        const builder = new BatchBuilder(this.cursor(), this.config, this.opts.catalog(), this.log)
        const read = this.done(this.ahead)
          ? 0
          : await reader.each(etlBatchSize, etlLingerMs, IDLE_MS, (m) => builder.add(m), signal, YIELD_EVERY)
        const prepared =
          read > 0
            ? builder.finish()
            : pastUnread(this.cursor(), (topic, partition) => this.fetchedTo(consumer, topic, partition))
        if ((await settle()) === 'fenced') return 'fenced'
        if (this.held?.released) return 'released'
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

  /** Where this worker stands, for preparing the next batch (prepare.ts), which moves `ahead`. */
  private cursor(): Cursor {
    return { ahead: this.ahead, end: this.end, partitions: this.summary }
  }

  /** Where the consumer's last fetch of a partition ended, as `pastUnread` asks. */
  private fetchedTo(consumer: EvfConsumer, topic: string, partition: number): bigint | undefined {
    const id = this.topicIds.get(topic)
    return id ? consumer.fetchedTo.get(`${id}:${partition}`) : undefined
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
