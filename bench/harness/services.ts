/**
 * The embedded servers a benchmark measures against, fresh for each run: a PostgreSQL cluster
 * and a one-node Kafka broker with the station topics. A server an earlier, killed run left
 * holding the directory is stopped first; each is stopped by cleanup, also on a signal while it
 * is still starting (through its pid file).
 */
import { chmodSync, mkdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { createAdmin, ensureTopics, type KafkaSettings, scramLogin } from '../../src/kafka/index.ts'
import { freePort, startEmbeddedKafka, startEmbeddedPostgres } from '../../src/services/index.ts'
import { createLogger } from '../../src/shared/log.ts'
import { allTopics } from '../../test/plant.ts'
import { requirePid } from './proc.ts'
import { cleanupNow, onCleanup, stopLeftover } from './processes.ts'
import { progress, seconds } from './report.ts'

const log = createLogger('bench', 'warn')

export interface Postgres {
  url: string
  port: number
  /** the postmaster: its tree is PostgreSQL's CPU */
  postmaster: number
  /** stops it now (cleanup would, at the end) */
  stop: () => Promise<void>
}

/** A fresh cluster in `<dir>/postgres` (what `dir` held is removed), on `port` or a free one. */
export async function startPostgres(dir: string, port = 0): Promise<Postgres> {
  const pidFile = join(dir, 'postgres', 'postmaster.pid')
  const leftover = { signal: 'SIGINT', graceMs: 10_000 } as const
  await stopLeftover('PostgreSQL', pidFile, leftover)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  // As root, PostgreSQL runs as `postgres`, which must reach its directories under this one.
  chmodSync(dir, 0o755)
  const t0 = performance.now()
  progress(`PostgreSQL: initialising a fresh cluster in ${dir}…`)
  // Until the server is up, a signal stops it through its pid file.
  const stop = onCleanup('PostgreSQL', () =>
    stopLeftover('PostgreSQL', pidFile, { ...leftover, quiet: true }),
  )
  const db = await startEmbeddedPostgres({ dataDir: dir, port, log })
  stop.run = () => db.stop()
  const postmaster = requirePid(pidFile)
  progress(`PostgreSQL: up on port ${db.port} (pid ${postmaster}) in ${seconds(t0)}`)
  return { url: db.url, port: db.port, postmaster, stop: () => cleanupNow(stop) }
}

export interface Kafka {
  label: string
  nodes: number
  brokers: string
  /** the admin's login */
  login: KafkaSettings
  /** the brokers' JVMs (every thread counts in its process) */
  pids: number[]
  stop: () => Promise<void>
}

/** The station topics, created once as admin (the simulator and the ETL would both try at start). */
export async function createStationTopics(login: KafkaSettings, topicPrefix: string, partitions: number) {
  const admin = createAdmin(login, 'bench-admin')
  try {
    await ensureTopics(admin, allTopics(topicPrefix), partitions, log, login.kafkaUsername)
  } finally {
    await admin.close()
  }
}

/**
 * One broker in `<dir>/kafka`, fresh (no topics, no offsets), on the given ports or free ones,
 * with the station topics of `topicPrefix`.
 */
export async function startKafka(
  dir: string,
  opts: { heapMb: number; partitions: number; topicPrefix: string; port?: number; controllerPort?: number },
): Promise<Kafka> {
  const home = join(dir, 'kafka')
  const pidFile = join(home, 'broker.pid')
  const leftover = { signal: 'SIGTERM', graceMs: 30_000, program: /kafka\.Kafka/ } as const
  await stopLeftover('Kafka', pidFile, leftover)
  rmSync(home, { recursive: true, force: true })
  const port = opts.port ?? (await freePort())
  const t0 = performance.now()
  progress(`Kafka, 1 node: starting a broker on 127.0.0.1:${port} (data in ${home})…`)
  const stop = onCleanup('Kafka (1 node)', () => stopLeftover('Kafka', pidFile, { ...leftover, quiet: true }))
  const broker = await startEmbeddedKafka({
    dataDir: dir,
    port,
    controllerPort: opts.controllerPort ?? (await freePort()),
    heapMb: opts.heapMb,
    partitions: opts.partitions,
    log,
  })
  stop.run = () => broker.stop()
  const login = scramLogin(broker.brokers, 'admin', broker.secrets.admin)
  await createStationTopics(login, opts.topicPrefix, opts.partitions)
  progress(`Kafka, 1 node: ${broker.brokers} answers (pid ${broker.process.pid}) after ${seconds(t0)}`)
  const pids = [broker.process.pid!]
  return { label: '1 node', nodes: 1, brokers: broker.brokers, login, pids, stop: () => cleanupNow(stop) }
}
