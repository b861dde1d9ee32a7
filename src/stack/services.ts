import { join } from 'node:path'
import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { createPool, kafkaNodesRecorder, loadCatalog, migrate } from '../db/index.ts'
import {
  createAdmin,
  ensureTopics,
  grantComponentAcls,
  type KafkaSettings,
  type KafkaUser,
  scramLogin,
} from '../kafka/index.ts'
import {
  brokerTls,
  KafkaCluster,
  type KafkaTls,
  startEmbeddedKafka,
  startEmbeddedPostgres,
  startStandby,
} from '../services/index.ts'
import type { Logger } from '../shared/log.ts'

export interface Services {
  databaseUrl: string
  /** the hot standby (`--postgres-replica`), as the owner; undefined without one */
  databaseReadUrl?: string
  kafkaBrokers: string
  /**
   * How each principal logs in to Kafka: on the embedded broker its own SCRAM user (its password
   * from `<dataDir>/secrets/kafka.json`); on an existing cluster, the configured login for all.
   */
  kafka: Record<KafkaUser, KafkaSettings>
  /** how long each step took, for the start-up report */
  timings: Record<string, number>
  stop(): Promise<void>
}

/** Runs a start-up step and records how long it took, for the start-up report. */
type Timed = <T>(step: string, fn: () => Promise<T>) => Promise<T>

/** How to stop the embedded services this start has started so far. */
interface Stops {
  /** the embedded cluster, when there is one: its nodes are recorded for /ready and /metrics */
  cluster?: KafkaCluster
  kafka?: () => Promise<void>
  standby?: () => Promise<void>
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
  // A keystore Kafka could not use stops the start before anything runs, naming the setting.
  const tls = config.kafkaKeystore ? await timed('kafka tls', () => brokerTls(config)) : undefined
  // Kafka first: the last consumers and producers are gone by then, and PostgreSQL goes last.
  const stop = async () => {
    for (const s of [stops.kafka, stops.standby, stops.postgres])
      await s?.().catch((e) => log.warn({ err: String(e) }, 'stop failed'))
  }
  // The two services start side by side: PostgreSQL is ready long before the JVM.
  const [db, broker] = await Promise.allSettled([
    database(config, log, timed, stops),
    kafka(config, log, timed, stops, tls),
  ])
  if (db.status === 'rejected' || broker.status === 'rejected') {
    await stop()
    throw db.status === 'rejected' ? db.reason : (broker as PromiseRejectedResult).reason
  }
  try {
    // The applied catalog's topics, as admin, so that no component needs to create them.
    await timed('topics', () => stationTopics(config, broker.value.admin, db.value.catalog, log))
  } catch (error) {
    await stop()
    throw error
  }
  await recordNodes(stops.cluster, db.value.databaseUrl, log)
  const { catalog: _c, ...urls } = db.value
  return { ...urls, kafkaBrokers: broker.value.admin.kafkaBrokers, kafka: broker.value, timings, stop }
}

/**
 * The cluster's nodes, in PostgreSQL, now and at each change: /ready, /metrics and the dashboard
 * say when one is down (a node that dies is logged and started again with backoff meanwhile).
 */
async function recordNodes(
  cluster: KafkaCluster | undefined,
  databaseUrl: string,
  log: Logger,
): Promise<void> {
  const pool = createPool(databaseUrl, { max: 1, application: 'evf-stack-kafka-nodes' })
  const record = kafkaNodesRecorder(pool, (e) =>
    log.warn({ err: String(e) }, 'cannot record the Kafka nodes'),
  )
  await record(cluster?.nodes() ?? [])
  if (!cluster) return void (await pool.end())
  cluster.onChange = (nodes) => void record(nodes)
  const stop = cluster.stop.bind(cluster)
  cluster.stop = async () => {
    await stop()
    await pool.end()
  }
}

/** Creates the station topics of `catalog` that do not exist, as `admin`. */
async function stationTopics(
  config: Config,
  login: KafkaSettings,
  catalog: Catalog,
  log: Logger,
): Promise<void> {
  const admin = createAdmin(login, 'evf-stack-admin')
  try {
    await ensureTopics(
      admin,
      catalog.topicsOf(config.topicPrefix),
      config.topicPartitions,
      log,
      login.kafkaUsername,
    )
  } finally {
    await admin.close()
  }
}

/**
 * PostgreSQL: the configured server, or an embedded one; migrated either way, with the catalog
 * file applied when it changed; with `postgresReplica`, an embedded hot standby of it. Answers
 * their URLs and the catalog in force.
 */
async function database(
  config: Config,
  log: Logger,
  timed: Timed,
  stops: Stops,
): Promise<{ databaseUrl: string; databaseReadUrl?: string; catalog: Catalog }> {
  let url = config.databaseUrl
  if (!url) {
    const db = await timed('postgres', () =>
      startEmbeddedPostgres({ dataDir: config.dataDir, port: config.databasePort, log }),
    )
    stops.postgres = db.stop
    url = db.url
  }
  const pool = createPool(url, { max: 1, application: 'evf-migrate' })
  let catalog: Catalog
  try {
    const applied = await timed('migrations', () => migrate(pool, { catalog: config.catalog }))
    if (applied.length) log.info({ applied }, 'applied migrations')
    catalog = (await loadCatalog(pool))!
    log.info({ version: catalog.version, stations: catalog.stations.length }, 'catalog in force')
  } finally {
    await pool.end()
  }
  if (!config.postgresReplica || config.databaseUrl) return { databaseUrl: url, catalog }
  const primaryUrl = url
  const standby = await timed('postgres standby', () =>
    startStandby({ primaryUrl, dataDir: config.dataDir, port: 0, log }),
  )
  stops.standby = standby.stop
  return { databaseUrl: url, databaseReadUrl: standby.url, catalog }
}

/**
 * Kafka: the configured brokers, or an embedded one (with the components' ACLs; over TLS with
 * `tls`, its CA in every login); the station topics created either way, as admin, so that no
 * component needs to create them.
 */
async function kafka(
  config: Config,
  log: Logger,
  timed: Timed,
  stops: Stops,
  tls: KafkaTls | undefined,
): Promise<Record<KafkaUser, KafkaSettings>> {
  let logins: Record<KafkaUser, KafkaSettings> = {
    admin: config,
    etl: config,
    simulator: config,
    ingest: config,
  }
  if (!config.kafkaBrokers) {
    const options = {
      dataDir: config.dataDir,
      port: config.kafkaPort,
      controllerPort: config.kafkaControllerPort,
      heapMb: config.kafkaHeapMb,
      partitions: config.topicPartitions,
      log,
      tls,
    }
    // A cluster's nodes are watched: one that dies is logged and started again with backoff.
    const cluster =
      config.kafkaNodes > 1
        ? new KafkaCluster({ ...options, nodes: config.kafkaNodes, restartNodes: true })
        : undefined
    stops.cluster = cluster
    const broker = await timed('kafka', () => (cluster ? cluster.start() : startEmbeddedKafka(options)))
    stops.kafka = broker.stop
    const login = (u: KafkaUser) => scramLogin(broker.brokers, u, broker.secrets[u], tls?.caFile)
    logins = {
      admin: login('admin'),
      etl: login('etl'),
      simulator: login('simulator'),
      ingest: login('ingest'),
    }
  }
  if (!config.kafkaBrokers) {
    // On an existing cluster the ACLs are its operator's (docs/security.md). Prefixed: a station
    // added to the catalog later is covered.
    const admin = createAdmin(logins.admin, 'evf-stack-admin')
    try {
      await grantComponentAcls(admin, config)
    } finally {
      await admin.close()
    }
  }
  return logins
}

export const logsDir = (config: Config): string => join(config.dataDir, 'logs')
