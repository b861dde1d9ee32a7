import { defaultPartitioner } from '@platformatic/kafka'
import { allTopics, topicFor } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { classify } from '../errors/index.ts'
import { createAdmin, createProducer, ensureTopics } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { backoff, sleep } from '../shared/time.ts'
import { PlantSimulator, type Reading } from './generator.ts'

export interface SimulatorSummary {
  produced: number
  durationMs: number
}

const SEND_CHUNK = 2000

/**
 * A reading as a Kafka message keyed by its sensor. With `partitions` (the topics' count), its
 * partition is chosen here, as the client's default partitioner would (murmur2 of the key): the
 * sender then knows where each message went, and resends only what was not acknowledged.
 */
export function toMessage(reading: Reading, prefix: string, partitions?: number) {
  const key = Buffer.from(reading.sensor_id)
  const topic = topicFor(reading.station, prefix)
  return {
    topic,
    key,
    value: Buffer.from(JSON.stringify(reading)),
    ...(partitions ? { partition: defaultPartitioner({ topic, key }, key) % partitions } : {}),
  }
}

type Message = ReturnType<typeof toMessage>

/**
 * Sends until Kafka has acknowledged every message: a reading is never dropped. When a broker is
 * lost, the send in flight fails after the client's own retries (it keeps asking the dead leader);
 * the partitions that were acknowledged are known (`error.produced`), and only the others are
 * sent again. The idempotent producer moves a partition's sequence number only on an
 * acknowledgement, so a message the old leader had written but not acknowledged comes back with
 * the same sequence, and the broker drops the duplicate. A refused login or topic is not retried.
 */
async function deliver(
  producer: ReturnType<typeof createProducer>,
  messages: Message[],
  log: Logger,
  signal?: AbortSignal,
): Promise<void> {
  let pending = messages
  const since = Date.now()
  for (let attempt = 0; ; attempt++) {
    try {
      await producer.send({ messages: pending })
      if (attempt > 0)
        log.warn({ seconds: (Date.now() - since) / 1000 }, 'Kafka acknowledges again: producing resumed')
      return
    } catch (error) {
      if (classify(error).code === 'KAFKA_AUTH' || signal?.aborted) throw error
      const acked = new Set(
        (
          (error as { produced?: { offsets?: { topic: string; partition: number }[] } }).produced?.offsets ??
          []
        ).map((o) => `${o.topic}:${o.partition}`),
      )
      pending = pending.filter((m) => !acked.has(`${m.topic}:${m.partition}`))
      const level = Date.now() - since > 30_000 ? 'error' : 'warn'
      log[level](
        { err: (error as Error).message, waiting: pending.length, seconds: (Date.now() - since) / 1000 },
        'Kafka did not acknowledge: producing stalled, sending the rest again',
      )
      await sleep(backoff(attempt), signal)
    }
  }
}

/**
 * Produces readings until the count or duration is reached or `signal` aborts. Paced mode sends
 * one reading per sensor every `simIntervalMs`; count mode (`simCount` > 0) sends as fast as the
 * broker acknowledges, for tests and benchmarks. Every send is awaited, so on abort the readings
 * already handed to the producer are acknowledged before it closes. A refused login or a denied
 * topic ends it with KAFKA_AUTH, naming its user.
 */
export async function runSimulator(
  config: Config,
  log: Logger,
  signal?: AbortSignal,
): Promise<SimulatorSummary> {
  try {
    return await produce(config, log, signal)
  } catch (error) {
    const e = classify(error, config.kafkaUsername)
    throw e.code === 'KAFKA_AUTH' ? e : error
  }
}

async function produce(config: Config, log: Logger, signal?: AbortSignal): Promise<SimulatorSummary> {
  const started = Date.now()
  // Only lists them when they exist (`stack up` creates them as admin): no CreateTopics needed.
  const admin = createAdmin(config, 'evf-simulator-admin')
  try {
    await ensureTopics(
      admin,
      allTopics(config.topicPrefix),
      config.topicPartitions,
      log,
      config.kafkaUsername,
    )
  } finally {
    await admin.close()
  }
  const producer = createProducer(config, 'evf-simulator')
  const plant = new PlantSimulator({
    stations: config.simStations,
    sensorsPerStation: config.simSensorsPerStation,
    seed: config.simSeed,
    faultRate: config.simFaultRate,
  })
  let produced = 0
  try {
    if (config.simCount > 0) {
      produced = await produceCount(config, plant, producer, log, signal)
    } else {
      const stopAt =
        config.simDurationSec > 0 ? started + config.simDurationSec * 1000 : Number.POSITIVE_INFINITY
      log.info({ sensors: plant.sensors.length, intervalMs: config.simIntervalMs }, 'simulator running')
      let next = Date.now()
      while (!signal?.aborted && Date.now() < stopAt) {
        const readings = plant.tick(Date.now())
        await deliver(
          producer,
          readings.map((r) => toMessage(r, config.topicPrefix, config.topicPartitions)),
          log,
          signal,
        )
        produced += readings.length
        next += config.simIntervalMs
        await sleep(Math.max(0, next - Date.now()), signal)
      }
    }
  } finally {
    await producer.close()
  }
  const summary = { produced, durationMs: Date.now() - started }
  log.info(summary, 'simulator stopped')
  return summary
}

async function produceCount(
  config: Config,
  plant: PlantSimulator,
  producer: ReturnType<typeof createProducer>,
  log: Logger,
  signal?: AbortSignal,
): Promise<number> {
  const total = config.simCount
  let produced = 0
  let lastReport = Date.now()
  // Readings are stamped as if paced by the interval, ending now: a backfill of recent history.
  const ticks = Math.ceil(total / plant.sensors.length)
  let t = Date.now() - ticks * config.simIntervalMs
  let buffer: Reading[] = []
  while (produced < total && !signal?.aborted) {
    while (buffer.length < SEND_CHUNK && produced + buffer.length < total) {
      buffer.push(...plant.tick(t).slice(0, total - produced - buffer.length))
      t += config.simIntervalMs
    }
    await deliver(
      producer,
      buffer.map((r) => toMessage(r, config.topicPrefix, config.topicPartitions)),
      log,
      signal,
    )
    produced += buffer.length
    buffer = []
    if (Date.now() - lastReport > 2000) {
      lastReport = Date.now()
      log.info({ produced, total, percent: Math.round((produced / total) * 100) }, 'producing')
    }
  }
  return produced
}
