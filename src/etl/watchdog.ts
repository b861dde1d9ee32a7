import type { Config } from '../config/index.ts'
import { type EtlHealth, etlHealth, type Pool, recordLogEnds } from '../db/index.ts'
import { createConsumer } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'

/** While a stall lasts, it is logged again this often. */
const STILL_STALLED_EVERY_MS = 10_000

/**
 * The continuous ETL's watchdog, run by the `etl follow` supervisor — outside the worker
 * processes, so a worker that is frozen (SIGSTOP, a blocked event loop) or whose consumer
 * stopped fetching is seen all the same. Every `everyMs` it asks Kafka for each partition's log
 * end with the position seen and when it last moved (`recordLogEnds`); a partition behind for longer than
 * `etlStallSec` with no commit is stalled (`etlHealth`, the definition the API uses too). On a
 * stall it logs an error and calls `recover` (the supervisor restarts the workers), then gives
 * the new workers `etlStallSec` to commit before it acts again. The fence keeps a restart from
 * losing or doubling anything.
 */
export class StallWatchdog {
  private timer: NodeJS.Timeout | undefined
  private readonly consumer
  private stalledAt = 0
  private actedAt = 0
  private saidAt = 0
  private checking = false
  private kafkaDown = false

  constructor(
    private readonly config: Config,
    private readonly pool: Pool,
    private readonly log: Logger,
    /** the topics whose log ends it records (the catalog's, as it changes) */
    private readonly topics: () => string[],
    private readonly recover: (health: EtlHealth) => Promise<void>,
    private readonly everyMs = Math.min(2000, (config.etlStallSec * 1000) / 3),
  ) {
    // Never joins its group: it only lists offsets.
    this.consumer = createConsumer(config, `evf-etl-watchdog-${process.pid}`, `${config.etlGroupId}-watchdog`)
  }

  start(): void {
    this.timer = setInterval(() => void this.check(), this.everyMs)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    while (this.checking) await new Promise((r) => setTimeout(r, 20))
    await this.consumer.close().catch(() => undefined)
  }

  /** One look: record the log ends, then act on a stall. Never throws. */
  async check(): Promise<void> {
    if (this.checking) return
    this.checking = true
    try {
      await this.recordEnds()
      const health = await etlHealth(this.pool, this.config.etlStallSec)
      if (health.stalled) await this.onStalled(health)
      else if (this.stalledAt) {
        this.log.warn(
          { stalledForSec: Math.round((Date.now() - this.stalledAt) / 1000) },
          'ETL committing again',
        )
        this.stalledAt = 0
      }
    } catch (error) {
      this.log.warn({ err: String(error) }, 'ETL watchdog could not check the ETL’s progress')
    } finally {
      this.checking = false
    }
  }

  private async recordEnds(): Promise<void> {
    try {
      const ends = await this.consumer.listOffsets({ topics: this.topics() })
      if (this.kafkaDown) this.log.warn('ETL watchdog reaches Kafka again')
      this.kafkaDown = false
      await recordLogEnds(this.pool, ends, { watch: true })
    } catch (error) {
      // Without Kafka the lag is unknown; the workers log their own retries meanwhile.
      if (!this.kafkaDown) this.log.warn({ err: String(error) }, 'ETL watchdog cannot reach Kafka')
      this.kafkaDown = true
    }
  }

  private async onStalled(health: EtlHealth): Promise<void> {
    const now = Date.now()
    // A partition held back at a batch that cannot be decoded is stalled too, but a restart
    // cannot help it: the worker logged it, and /ready says so until `evf etl skip`.
    const stalled = health.partitions.filter((p) => p.stalled && p.blocked_reason === null)
    if (stalled.length === 0) return
    const detail = {
      lag: health.lag,
      stallSec: this.config.etlStallSec,
      lastCommitAt: health.last_commit_at?.toISOString() ?? null,
      partitions: stalled.map((p) => ({
        topic: p.topic,
        partition: p.partition,
        lag: p.lag,
        behindSec: p.behind_sec,
      })),
    }
    if (!this.stalledAt) this.stalledAt = now
    if (now - this.actedAt < this.config.etlStallSec * 1000) {
      if (now - this.saidAt >= STILL_STALLED_EVERY_MS) {
        this.saidAt = now
        this.log.error(detail, 'ETL still stalled; waiting for the restarted workers to commit')
      }
      return
    }
    this.saidAt = now
    this.actedAt = now
    this.log.error(
      detail,
      `ETL stalled: messages wait and nothing was committed for over ${this.config.etlStallSec} s; restarting its workers`,
    )
    await this.recover(health)
  }
}
