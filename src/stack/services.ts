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

/**
 * The stateful half of the stack: PostgreSQL (embedded unless DATABASE_URL is set, migrated
 * either way) and Kafka (embedded unless KAFKA_BROKERS is set, station topics created).
 * `stop()` stops what this call started, Kafka first.
 */
export async function startServices(config: Config, log: Logger): Promise<Services> {
  const timings: Record<string, number> = {}
  const stops: (() => Promise<void>)[] = []
  const timed = async <T>(step: string, fn: () => Promise<T>): Promise<T> => {
    const t0 = performance.now()
    const result = await fn()
    timings[step] = Math.round(performance.now() - t0)
    return result
  }
  const stop = async () => {
    for (const s of stops.reverse()) await s().catch((e) => log.warn({ err: String(e) }, 'stop failed'))
  }
  try {
    let databaseUrl = config.databaseUrl
    if (!databaseUrl) {
      const db = await timed('postgres', () =>
        startEmbeddedPostgres({ dataDir: config.dataDir, port: config.databasePort, log }),
      )
      stops.push(db.stop)
      databaseUrl = db.url
    }
    const pool = createPool(databaseUrl, { max: 1, application: 'evf-migrate' })
    try {
      const applied = await timed('migrations', () => migrate(pool))
      if (applied.length) log.info({ applied }, 'applied migrations')
    } finally {
      await pool.end()
    }

    let kafkaBrokers = config.kafkaBrokers
    if (!kafkaBrokers) {
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
      stops.push(broker.stop)
      kafkaBrokers = broker.brokers
    }
    await timed('topics', async () => {
      const admin = createAdmin(kafkaBrokers, 'evf-stack-admin')
      try {
        await ensureTopics(admin, allTopics(config.topicPrefix), config.topicPartitions, log)
      } finally {
        await admin.close()
      }
    })
    return { databaseUrl, kafkaBrokers, timings, stop }
  } catch (error) {
    await stop()
    throw error
  }
}

export const logsDir = (config: Config): string => join(config.dataDir, 'logs')
