import type { Producer } from '@platformatic/kafka'
import { type Catalog, MESSAGE_HEADERS } from '../catalog/index.ts'
import type { KafkaSettings } from '../kafka/index.ts'
import { createProducer } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { toMessage } from '../simulator/index.ts'
import type { IngestedReading, SourceKind } from './types.ts'

/** Readings gathered into one produce request: a device's messages arrive one at a time. */
const MAX_BATCH = 2000
/** How long the first reading of a batch waits for others before the batch is sent. */
const LINGER_MS = 5
/** How often a send that Kafka has not acknowledged is reported. */
const STALL_REPORT_MS = 5_000

interface Pending {
  items: IngestedReading[]
  kind: SourceKind
  resolve: () => void
  reject: (error: unknown) => void
}

/**
 * Where `evf ingest` puts readings: the station topics, in our message format, keyed by sensor,
 * through one idempotent producer that retries until Kafka acknowledges. `send()` resolves only
 * when Kafka has acknowledged every reading given to it: a source acknowledges its device (an
 * MQTT PUBACK) then, and not before, so a crash loses nothing. Readings from many calls are sent
 * together (up to 2,000, after 5 ms), and batches go one at a time, in order.
 */
export class KafkaSink {
  private readonly producer: Producer
  private queue: Pending[] = []
  private queued = 0
  private timer: NodeJS.Timeout | undefined
  private sending: Promise<void> = Promise.resolve()
  /** readings handed to send() and not yet acknowledged by Kafka */
  inFlight = 0

  constructor(
    kafka: KafkaSettings,
    private readonly catalog: () => Catalog,
    private readonly topicPrefix: string,
    private readonly log: Logger,
  ) {
    this.producer = createProducer(kafka, 'evf-ingest', { untilAcknowledged: true })
  }

  /** Resolves when Kafka has acknowledged all of `items` (in order with earlier calls). */
  send(kind: SourceKind, items: IngestedReading[]): Promise<void> {
    if (items.length === 0) return Promise.resolve()
    this.inFlight += items.length
    return new Promise((resolve, reject) => {
      this.queue.push({ items, kind, resolve, reject })
      this.queued += items.length
      if (this.queued >= MAX_BATCH) this.flush()
      else this.timer ??= setTimeout(() => this.flush(), LINGER_MS)
    })
  }

  /** Sends what is queued now, after the batch in flight. */
  private flush(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    const batch = this.queue
    const count = this.queued
    this.queue = []
    this.queued = 0
    if (batch.length === 0) return
    this.sending = this.sending.then(() => this.produce(batch, count))
  }

  private async produce(batch: Pending[], count: number): Promise<void> {
    const catalog = this.catalog()
    const messages = batch.flatMap((p) =>
      p.items.map((item) => ({
        ...toMessage(item.reading, catalog, this.topicPrefix),
        ...(item.raw && { value: item.raw }),
        headers: headers(p.kind, item),
      })),
    )
    const since = Date.now()
    const report = setInterval(() => {
      const seconds = Math.round((Date.now() - since) / 1000)
      this.log[seconds >= 30 ? 'error' : 'warn'](
        { seconds, waiting: this.inFlight },
        'Kafka has not acknowledged: ingest holds its devices’ messages unacknowledged',
      )
    }, STALL_REPORT_MS)
    try {
      await this.producer.send({ messages })
      for (const p of batch) p.resolve()
    } catch (error) {
      for (const p of batch) p.reject(error)
    } finally {
      clearInterval(report)
      this.inFlight -= count
    }
  }

  /** Sends what is queued, waits for it, and closes the producer. */
  async close(): Promise<void> {
    this.flush()
    await this.sending
    await this.producer.close()
  }
}

/** A Map of Buffers: the producer has no header serialisers, and a string key fails each try with a TypeError. */
function headers(kind: SourceKind, item: IngestedReading): Map<Buffer, Buffer> {
  const h = new Map([[Buffer.from(MESSAGE_HEADERS.source), Buffer.from(kind)]])
  if (item.redelivered) h.set(Buffer.from(MESSAGE_HEADERS.redelivered), Buffer.from('1'))
  if (item.quality) h.set(Buffer.from(MESSAGE_HEADERS.quality), Buffer.from(item.quality))
  return h
}
