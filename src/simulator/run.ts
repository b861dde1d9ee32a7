import { murmur2, type Producer } from '@platformatic/kafka'
import { type Catalog, catalogFromFile, type SensorMessage } from '../catalog/index.ts'
import { type Config, checkSimFaults, formatSimFault, simFaultProblems } from '../config/index.ts'
import { CatalogFollower, createPool, loadCatalog, type Pool } from '../db/index.ts'
import { classify, PipelineError } from '../errors/index.ts'
import { createAdmin, createProducer, ensureTopics } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { sleep } from '../shared/time.ts'
import { PlantSimulator } from './generator.ts'
import { openTransport } from './transports/index.ts'

export interface SimulatorSummary {
  produced: number
  durationMs: number
}

const SEND_CHUNK = 2000

/** A sensor's message key and the partition number Kafka's default partitioner gives it. */
const keys = new Map<string, { key: Buffer; partition: number }>()
/** Sensor ids come from devices too: the cache is emptied if it ever holds this many. */
const MAX_KEYS = 100_000

function keyOf(sensorId: string): { key: Buffer; partition: number } {
  let k = keys.get(sensorId)
  if (!k) {
    if (keys.size >= MAX_KEYS) keys.clear()
    const key = Buffer.from(sensorId)
    // What the client's default partitioner computes for the key (it takes either modulo the
    // topic's partition count): hashed once per sensor instead of at every reading.
    k = { key, partition: murmur2(key) >>> 0 }
    keys.set(sensorId, k)
  }
  return k
}

/**
 * A reading as a Kafka message keyed by its sensor: all of a sensor's readings go to one
 * partition, the one the client's default partitioner picks for the key (murmur2 of the key, as
 * Java's, but unsigned where Java masks the sign bit: a partition may differ from a Java producer's).
 */
export function toMessage(reading: SensorMessage, catalog: Catalog, prefix: string) {
  const station = catalog.station(reading.station)
  const { key, partition } = keyOf(reading.sensor_id)
  return {
    topic: `${prefix}${station?.topic ?? reading.station}`,
    key,
    partition,
    value: Buffer.from(JSON.stringify(reading)),
  }
}

type Message = ReturnType<typeof toMessage>

/** How often a send that Kafka has not acknowledged is reported while the client retries it. */
const STALL_REPORT_MS = 5_000
/** How long a send in flight may finish after the simulator is told to stop. */
const STOP_GRACE_MS = 10_000

/**
 * Sends until Kafka has acknowledged every message: a reading is never dropped, never doubled.
 * The producer retries a send itself until a broker acknowledges it (`untilAcknowledged`), with
 * the same producer id and sequence numbers and fresh metadata on each try, so a leader lost
 * mid-send is followed to the new one and a batch the old leader had written is dropped there as
 * a duplicate. Sending the rest again from here, as this loop did with the 1.x client, would now
 * double readings: the 2.x client starts a new producer id after a failed send. What this does is
 * say so, every 5 s, while Kafka does not acknowledge, and when it does again. On stop, a send in
 * flight gets 10 s before the producer is closed under it.
 */
async function deliver(producer: Producer, messages: Message[], log: Logger, signal?: AbortSignal) {
  const since = Date.now()
  let stalled = false
  const report = setInterval(() => {
    stalled = true
    const seconds = Math.round((Date.now() - since) / 1000)
    log[seconds >= 30 ? 'error' : 'warn'](
      { seconds, waiting: messages.length },
      'Kafka has not acknowledged: producing stalled, the producer retries',
    )
  }, STALL_REPORT_MS)
  let force: NodeJS.Timeout | undefined
  const onAbort = () => {
    force = setTimeout(() => void producer.close(true).catch(() => undefined), STOP_GRACE_MS)
  }
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    await producer.send({ messages })
  } finally {
    clearInterval(report)
    clearTimeout(force)
    signal?.removeEventListener('abort', onAbort)
  }
  if (stalled)
    log.warn({ seconds: (Date.now() - since) / 1000 }, 'Kafka acknowledges again: producing resumed')
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

/**
 * The catalog to simulate: the file's (`catalog`), or with `simCatalogFrom` = database the applied
 * one, followed live (a station applied while it runs is simulated from then on).
 */
async function simulatedCatalog(
  config: Config,
  log: Logger,
  onChange: (catalog: Catalog) => void,
): Promise<{ catalog: Catalog; close: () => Promise<void> }> {
  if (config.simCatalogFrom === 'file')
    return { catalog: catalogFromFile(config.catalog), close: async () => {} }
  const pool: Pool = createPool(config.databaseUrl, { max: 1, application: 'evf-simulator' })
  try {
    const applied = await loadCatalog(pool)
    if (!applied)
      throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
    const follower = new CatalogFollower(pool, applied, onChange, log)
    return { catalog: applied, close: () => follower.close().then(() => pool.end()) }
  } catch (error) {
    await pool.end()
    throw error
  }
}

/** The stations asked for, each one of the catalog's (CONFIG_INVALID naming the allowed ones). */
function checkStations(config: Config, catalog: Catalog): void {
  const unknown = config.simStations.filter((s) => !catalog.station(s))
  if (unknown.length > 0)
    throw new PipelineError(
      'CONFIG_INVALID',
      `simStations (EVF_SIM_STATIONS): ${unknown.join(', ')} not in the catalog; allowed: ${catalog.stations.map((s) => s.id).join(', ')}`,
    )
}

async function produce(config: Config, log: Logger, signal?: AbortSignal): Promise<SimulatorSummary> {
  const started = Date.now()
  let plant: PlantSimulator | undefined
  const source = await simulatedCatalog(config, log, (next) => {
    catalog = next
    plant?.follow(next)
    log.info({ version: next.version, sensors: plant?.sensors.length }, 'simulating the new catalog version')
    // Not fatal while running: a fault on what the new version dropped shifts nothing until it is back.
    const problems = simFaultProblems(config.simFault, next, config.simStations)
    if (problems.length > 0) log.warn({ problems }, 'simFault: the new catalog version lacks what it names')
  })
  let catalog = source.catalog
  try {
    checkStations(config, catalog)
    checkSimFaults(config.simFault, catalog, config.simStations)
    if (config.simTransport === 'kafka') await listTopics(config, catalog, log)
    plant = new PlantSimulator({
      catalog,
      stations: config.simStations,
      sensorsPerStation: config.simSensorsPerStation,
      seed: config.simSeed,
      faultRate: config.simFaultRate,
      meanShifts: config.simFault,
    })
    if (config.simFault.length > 0)
      log.warn({ simFault: config.simFault.map(formatSimFault) }, 'injecting faults into the readings')
    return await producePlant(config, plant, () => catalog, log, started, signal)
  } finally {
    await source.close()
  }
}

/** Only lists them when they exist (`stack up` creates them as admin): no CreateTopics needed. */
async function listTopics(config: Config, catalog: Catalog, log: Logger): Promise<void> {
  const admin = createAdmin(config, 'evf-simulator-admin')
  try {
    await ensureTopics(
      admin,
      catalog.topicsOf(config.topicPrefix),
      config.topicPartitions,
      log,
      config.kafkaUsername,
    )
  } finally {
    await admin.close()
  }
}

/** How readings leave the simulator: its own Kafka producer, or the devices it plays (transports/). */
interface Sender {
  send(readings: SensorMessage[], signal?: AbortSignal): Promise<void>
  close(): Promise<void>
}

async function openSender(
  config: Config,
  plant: PlantSimulator,
  catalog: () => Catalog,
  log: Logger,
): Promise<Sender> {
  if (config.simTransport !== 'kafka') {
    const device = await openTransport({ config, catalog, sensors: plant.sensors, log })
    log.info({ transport: config.simTransport }, 'simulator plays the devices')
    return { send: (readings) => device.send(readings), close: () => device.close() }
  }
  const producer = createProducer(config, 'evf-simulator', { untilAcknowledged: true })
  return {
    send: (readings, signal) =>
      deliver(
        producer,
        readings.map((r) => toMessage(r, catalog(), config.topicPrefix)),
        log,
        signal,
      ),
    close: () => producer.close(),
  }
}

async function producePlant(
  config: Config,
  plant: PlantSimulator,
  catalog: () => Catalog,
  log: Logger,
  started: number,
  signal?: AbortSignal,
): Promise<SimulatorSummary> {
  const sender = await openSender(config, plant, catalog, log)
  let produced = 0
  try {
    if (config.simCount > 0) {
      produced = await produceCount(config, plant, sender, log, signal)
    } else {
      const stopAt =
        config.simDurationSec > 0 ? started + config.simDurationSec * 1000 : Number.POSITIVE_INFINITY
      log.info({ sensors: plant.sensors.length, intervalMs: config.simIntervalMs }, 'simulator running')
      let next = Date.now()
      while (!signal?.aborted && Date.now() < stopAt) {
        const readings = plant.tick(Date.now())
        await sender.send(readings, signal)
        produced += readings.length
        next += config.simIntervalMs
        await sleep(Math.max(0, next - Date.now()), signal)
      }
    }
  } finally {
    await sender.close()
  }
  const summary = { produced, durationMs: Date.now() - started }
  log.info(summary, 'simulator stopped')
  return summary
}

async function produceCount(
  config: Config,
  plant: PlantSimulator,
  sender: Sender,
  log: Logger,
  signal?: AbortSignal,
): Promise<number> {
  const total = config.simCount
  let produced = 0
  let lastReport = Date.now()
  // Readings are stamped as if paced by the interval, ending now: a backfill of recent history.
  const ticks = Math.ceil(total / plant.sensors.length)
  let t = Date.now() - ticks * config.simIntervalMs
  let buffer: SensorMessage[] = []
  while (produced < total && !signal?.aborted) {
    while (buffer.length < SEND_CHUNK && produced + buffer.length < total) {
      buffer.push(...plant.tick(t).slice(0, total - produced - buffer.length))
      t += config.simIntervalMs
    }
    await sender.send(buffer, signal)
    produced += buffer.length
    buffer = []
    if (Date.now() - lastReport > 2000) {
      lastReport = Date.now()
      log.info({ produced, total, percent: Math.round((produced / total) * 100) }, 'producing')
    }
  }
  return produced
}
