import { blockedPartitions, type Pool, recordBlocked } from '../db/index.ts'
import type { EvfConsumer, UndecodableBatch } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'

/** A partition held back at a batch that cannot be decoded, by topic name. */
export interface HeldPartition {
  topic: string
  partition: number
  topicId: string
  firstOffset: bigint
  lastOffset: bigint
  /** written to `etl_blocked` (until then, a missing row does not mean it was skipped) */
  recorded: boolean
}

const tp = (topic: string, partition: number) => `${topic}:${partition}`

/**
 * The worker's side of the consumer's held-back partitions (kafka/consumer.ts): each is logged
 * as an error (KAFKA_UNDECODABLE_BATCH, with its offsets and the decoder's reason) and recorded
 * in `etl_blocked` with the batch's raw bytes, where `/ready`, `/metrics` and the dashboard read
 * it. Once `evf etl skip` has moved past it (its row is gone), `released` asks the worker to
 * re-seek from PostgreSQL, and the consumer fetches the partition again.
 */
export class HeldPartitions {
  readonly byKey = new Map<string, HeldPartition>()
  released = false

  constructor(
    private readonly consumer: EvfConsumer,
    private readonly pool: Pool,
    private readonly log: Logger,
    private readonly topics: string[],
  ) {
    consumer.onUndecodable = (bad) => void this.hold(bad)
  }

  /** Where a bounded run stops in this partition, if it is held back: before the batch. */
  stopAt(key: string): bigint | undefined {
    return this.byKey.get(key)?.firstOffset
  }

  describe(): string {
    return [...this.byKey.values()]
      .map((h) => `${h.topic}[${h.partition}] at offsets ${h.firstOffset}–${h.lastOffset}`)
      .join(', ')
  }

  /** Looks for held-back partitions that `evf etl skip` has moved; never throws. */
  async checkReleased(): Promise<void> {
    if (![...this.byKey.values()].some((h) => h.recorded)) return
    try {
      const still = new Set((await blockedPartitions(this.pool)).map((b) => tp(b.topic, b.partition)))
      for (const [key, h] of this.byKey) {
        if (!h.recorded || still.has(key)) continue
        this.byKey.delete(key)
        this.consumer.release(h.topicId, h.partition)
        this.released = true
        this.log.warn(
          { topic: h.topic, partition: h.partition },
          'the held-back partition was moved past its undecodable batch: loading it again',
        )
      }
    } catch (error) {
      this.log.warn({ err: String(error) }, 'could not check the held-back partitions')
    }
  }

  private async hold(bad: UndecodableBatch): Promise<void> {
    const topic = (await this.topicName(bad.topicId)) ?? bad.topicId
    const held: HeldPartition = { topic, ...bad, recorded: false }
    this.byKey.set(tp(topic, bad.partition), held)
    this.log.error(
      {
        code: 'KAFKA_UNDECODABLE_BATCH',
        topic,
        partition: bad.partition,
        firstOffset: String(bad.firstOffset),
        lastOffset: String(bad.lastOffset),
        bytes: bad.raw.length,
        reason: bad.reason,
      },
      `a record batch cannot be decoded: ${topic}[${bad.partition}] is held back at offset ${bad.firstOffset}, the other partitions go on loading; \`evf etl skip --topic ${topic} --partition ${bad.partition}\` moves past it, keeping its bytes as a dead letter`,
    )
    try {
      await recordBlocked(this.pool, { topic, ...bad })
      held.recorded = true
    } catch (error) {
      this.log.error(
        { err: String(error), topic, partition: bad.partition },
        'could not record the held-back partition',
      )
    }
  }

  private async topicName(topicId: string): Promise<string | undefined> {
    try {
      const metadata = await this.consumer.metadata({ topics: this.topics })
      for (const [name, t] of metadata.topics) if (t.id === topicId) return name
    } catch {
      // Named by its id instead.
    }
    return undefined
  }
}
