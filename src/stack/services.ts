import { join } from 'node:path'
import { allTopics } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { createPool, migrate, startEmbeddedPostgres } from '../db/index.ts'
import { createAdmin, ensureTopics, startEmbeddedKafka } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'

export interface Services {
  databaseUrl: string
  kafkaBrokers: string
  /** how long each step took, for the start-up report */
  timings: Record<string, number>
  stop(): Promise<void>
}

/** Runs a start-up step and records how long it took, for the start-up report. */
type Timed = <T>(step: string, fn: () => Promise<T>) => Promise<T>

/** How to stop the embedded services this start has started so far. */
interface Stops {
  kafka?: () => Promise<void>
  postgres?: () => Promise<void>
}

/**
 * The stateful half of the stack: PostgreSQL (embedded unless DATABASE_URL is set, migrated
 * either way) and Kafka (embedded unless KAFKA_BROKERS is set, station topics created).
 * `stop()` stops what this call started, Kafka first.
 */
export async function startServices(config: Config, log: Logger): Promise<Services> {
  const timings: Record<string, number> = {}
  const timed: Timed = async (step, fn) => {
    const t0 = performance.now()
    const result = await fn()
    timings[step] = Math.round(performance.now() - t0)
    return result
  }
  const stops: Stops = {}
  // Kafka first: the last consumers and producers are gone by then, and PostgreSQL goes last.
  const stop = async () => {
    for (const s of [stops.kafka, stops.postgres])
      await s?.().catch((e) => log.warn({ err: String(e) }, 'stop failed'))
  }
  // The two services start side by side: PostgreSQL is ready long before the JVM.
  const [db, broker] = await Promise.allSettled([
    database(config, log, timed, stops),
    kafka(config, log, timed, stops),
  ])
  if (db.status === 'rejected' || broker.status === 'rejected') {
    await stop()
    throw db.status === 'rejected' ? db.reason : (broker as PromiseRejectedResult).reason
  }
  return { databaseUrl: db.value, kafkaBrokers: broker.value, timings, stop }
}

/** PostgreSQL: the configured server, or an embedded one; migrated either way. Answers its URL. */
async function database(config: Config, log: Logger, timed: Timed, stops: Stops): Promise<string> {
  let url = config.databaseUrl
  if (!url) {
    const db = await timed('postgres', () =>
      startEmbeddedPostgres({ dataDir: config.dataDir, port: config.databasePort, log }),
    )
    stops.postgres = db.stop
    url = db.url
  }
  const pool = createPool(url, { max: 1, application: 'evf-migrate' })
  try {
    const applied = await timed('migrations', () => migrate(pool))
    if (applied.length) log.info({ applied }, 'applied migrations')
  } finally {
    await pool.end()
  }
  return url
}

/** Kafka: the configured brokers, or an embedded one; the station topics created either way. */
async function kafka(config: Config, log: Logger, timed: Timed, stops: Stops): Promise<string> {
  let brokers = config.kafkaBrokers
  if (!brokers) {
    const broker = await timed('kafka', () =>
      startEmbeddedKafka({
        dataDir: config.dataDir,
        port: config.kafkaPort,
        controllerPort: config.kafkaControllerPort,
        heapMb: config.kafkaHeapMb,
        partitions: config.topicPartitions,
        log,
      }),
    )
    stops.kafka = broker.stop
    brokers = broker.brokers
  }
  await timed('topics', async () => {
    const admin = createAdmin(brokers, 'evf-stack-admin')
    try {
      await ensureTopics(admin, allTopics(config.topicPrefix), config.topicPartitions, log)
    } finally {
      await admin.close()
    }
  })
  return brokers
}

export const logsDir = (config: Config): string => join(config.dataDir, 'logs')
