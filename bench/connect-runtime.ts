/**
 * Kafka Connect for bench:connect: its jars (connect/pom.xml, fetched by Maven into
 * .cache/connect/libs once per change of the pom), a standalone worker logging in to our broker
 * with SCRAM, the Debezium JDBC sink's configuration, and waiting until it has loaded the rows.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Pool } from '../src/db/index.ts'
import type { KafkaSettings } from '../src/kafka/index.ts'
import { freePort } from '../src/services/index.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { sleep } from '../src/shared/time.ts'
import {
  type Child,
  checkInterrupted,
  exited,
  fmt,
  logTail,
  progress,
  seconds,
  startChild,
} from './harness/index.ts'

const connectDir = join(repoRoot, '.cache', 'connect')
const libs = join(connectDir, 'libs')
const pom = join(repoRoot, 'connect', 'pom.xml')

/**
 * The jars of connect/pom.xml in .cache/connect/libs, fetched by `mvn dependency:copy-dependencies`
 * when the stamp (the pom's hash) says they are not those of the pom now. Not part of setup.mjs:
 * only this benchmark needs them (about 60 MB).
 */
export function fetchConnectJars(): void {
  const stamp = join(connectDir, '.stamp')
  const want = createHash('sha256').update(readFileSync(pom)).digest('hex')
  if (
    existsSync(stamp) &&
    readFileSync(stamp, 'utf8') === want &&
    existsSync(libs) &&
    readdirSync(libs).length > 0
  ) {
    progress(`Kafka Connect jars: up to date in ${libs}`)
    return
  }
  const t0 = performance.now()
  progress(
    'Kafka Connect jars: fetching connect/pom.xml from Maven Central (mvn dependency:copy-dependencies)…',
  )
  rmSync(libs, { recursive: true, force: true })
  mkdirSync(libs, { recursive: true })
  const mvn = spawnSync(
    'mvn',
    [
      '-B',
      '--no-transfer-progress',
      '-f',
      pom,
      'dependency:copy-dependencies',
      '-DincludeScope=runtime',
      `-DoutputDirectory=${libs}`,
    ],
    { cwd: repoRoot, stdio: ['ignore', 2, 2] },
  )
  if (mvn.error) throw new Error(`bench:connect needs Maven (mvn) on PATH: ${mvn.error.message}`)
  if (mvn.status !== 0) throw new Error(`mvn dependency:copy-dependencies exited with ${mvn.status} (above)`)
  writeFileSync(stamp, want)
  progress(`Kafka Connect jars: ${readdirSync(libs).length} in ${libs} (${seconds(t0)})`)
}

export interface SinkRun {
  /** the connector's name: its consumer group is connect-<name>, new for every run */
  name: string
  tasks: number
  /** the PostgreSQL dialect's UNNEST insert (one statement binding an array per column) */
  unnest: boolean
  /** records per put() (the worker consumer's max.poll.records) and per Debezium flush */
  batch: number
  topics: string[]
  table: string
}

/** java.util.Properties text: `\` escaped, which paths and passwords may hold. */
const properties = (entries: Record<string, string | number>): string =>
  `${Object.entries(entries)
    .map(([k, v]) => `${k}=${String(v).replaceAll('\\', '\\\\')}`)
    .join('\n')}\n`

/**
 * The worker: standalone, its REST API on a free local port (the status of the tasks), offsets
 * in a file, record values in Connect's JSON envelope (schema + payload) and keys as strings.
 * Connect's clients log in with the admin's SCRAM login: the worker's own (it asks the cluster
 * its id) and, prefixed `consumer.`, the sink tasks' consumers.
 */
function workerProperties(dir: string, kafka: KafkaSettings, restPort: number, run: SinkRun): string {
  if (kafka.kafkaSaslMechanism !== 'scram-sha-512' || kafka.kafkaCaFile)
    throw new Error('bench:connect expects the embedded broker: SASL SCRAM over plaintext')
  const sasl = {
    'security.protocol': 'SASL_PLAINTEXT',
    'sasl.mechanism': 'SCRAM-SHA-512',
    'sasl.jaas.config': `org.apache.kafka.common.security.scram.ScramLoginModule required username="${kafka.kafkaUsername}" password="${kafka.kafkaPassword}";`,
  }
  return properties({
    'bootstrap.servers': kafka.kafkaBrokers,
    ...sasl,
    ...Object.fromEntries(Object.entries(sasl).map(([k, v]) => [`consumer.${k}`, v])),
    // A new group for every run reads the topics from their start.
    'consumer.auto.offset.reset': 'earliest',
    'consumer.max.poll.records': run.batch,
    'key.converter': 'org.apache.kafka.connect.storage.StringConverter',
    'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
    'value.converter.schemas.enable': 'true',
    'offset.storage.file.filename': join(dir, 'offsets.dat'),
    listeners: `http://127.0.0.1:${restPort}`,
    // Every plugin on the classpath declares itself (META-INF/services): no reflective scan of
    // the 80 jars at start-up, which would only add to Connect's CPU time.
    'plugin.discovery': 'service_load',
  })
}

/**
 * The Debezium JDBC sink (option names from its 3.6.0.Final JdbcSinkConnectorConfig): plain
 * inserts into an existing table (no primary key from the record, no schema evolution), the
 * transformed readings' columns named as in the record.
 */
function connectorProperties(databaseUrl: string, run: SinkRun): string {
  const url = new URL(databaseUrl)
  return properties({
    name: run.name,
    'connector.class': 'io.debezium.connector.jdbc.JdbcSinkConnector',
    'tasks.max': run.tasks,
    topics: run.topics.join(','),
    'connection.url': `jdbc:postgresql://${url.hostname}:${url.port}${url.pathname}`,
    'connection.username': decodeURIComponent(url.username),
    'connection.password': decodeURIComponent(url.password),
    'insert.mode': 'insert',
    'primary.key.mode': 'none',
    'schema.evolution': 'none',
    // table.name.format before 3.x, deprecated now
    'collection.name.format': run.table,
    'batch.size': run.batch,
    'dialect.postgres.unnest.insert.enabled': String(run.unnest),
  })
}

/**
 * Connect's own logging: warnings and errors only, as our ETL logs in bench:etl
 * (BENCH_CONNECT_LOG_LEVEL=DEBUG, say, to see what it does).
 */
const log4j = `status = warn
appender.out.type = Console
appender.out.name = OUT
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = ${process.env.BENCH_CONNECT_LOG_LEVEL || 'WARN'}
rootLogger.appenderRef.out.ref = OUT
`

export interface Connect extends Child {
  pid: number
  /** the connector's task states, from the REST API ('' for a task not reported yet) */
  status: () => Promise<{ state: string; trace?: string }[]>
}

/**
 * `java -cp '.cache/connect/libs/*' org.apache.kafka.connect.cli.ConnectStandalone worker
 * connector`, in `dir`, with a heap like our broker's. Stopped (SIGTERM) by cleanup.
 */
export async function startConnect(
  dir: string,
  kafka: KafkaSettings,
  databaseUrl: string,
  run: SinkRun,
): Promise<Connect> {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const restPort = await freePort()
  const worker = join(dir, 'worker.properties')
  const connector = join(dir, 'connector.properties')
  const log4jFile = join(dir, 'log4j2.properties')
  // 0600: they hold the passwords.
  writeFileSync(worker, workerProperties(dir, kafka, restPort, run), { mode: 0o600 })
  writeFileSync(connector, connectorProperties(databaseUrl, run), { mode: 0o600 })
  writeFileSync(log4jFile, log4j)
  const child = startChild(
    `Kafka Connect (${run.name})`,
    'java',
    [
      '-Xms256m',
      '-Xmx1g',
      '-XX:+UseG1GC',
      '-XX:MaxGCPauseMillis=20',
      '-Djava.awt.headless=true',
      `-Dlog4j2.configurationFile=${log4jFile}`,
      '-cp',
      `${libs}/*`,
      'org.apache.kafka.connect.cli.ConnectStandalone',
      worker,
      connector,
    ],
    { env: process.env, logFile: join(dir, 'connect.log'), graceMs: 20_000 },
  )
  const status = async () => {
    try {
      const res = await fetch(`http://127.0.0.1:${restPort}/connectors/${run.name}/status`, {
        signal: AbortSignal.timeout(2000),
      })
      if (!res.ok) return []
      const body = (await res.json()) as { tasks?: { state: string; trace?: string }[] }
      return body.tasks ?? []
    } catch {
      return [] // not listening yet
    }
  }
  return { ...child, pid: child.child.pid!, status }
}

/** How often the rows are counted while a loader runs, the ETL's as Connect's (a few ms of PostgreSQL's time each). */
export const POLL_MS = 500

/**
 * Until `table` holds `n` rows; throws when the loader (Connect, or the ETL) exits, a Connect task
 * fails, or nothing new arrives for 120 s. A count every POLL_MS, Connect's tasks' states and a
 * progress line every 3 s.
 */
export async function waitForRows(
  pool: Pool,
  table: string,
  n: number,
  loader: Child & { status?: Connect['status'] },
): Promise<void> {
  const t0 = performance.now()
  let told = t0
  let last = -1
  let moved = Date.now()
  for (;;) {
    checkInterrupted()
    if (exited(loader.child))
      throw new Error(
        `the loader exited (${loader.child.exitCode ?? loader.child.signalCode}):\n${logTail(loader.logFile)}`,
      )
    const { rows } = await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`)
    const count = rows[0]!.n
    if (count >= n) return
    if (count !== last) [last, moved] = [count, Date.now()]
    if (performance.now() - told > 3000) {
      told = performance.now()
      const failed = (await loader.status?.())?.find((t) => t.state === 'FAILED')
      if (failed) throw new Error(`a Kafka Connect task failed:\n${failed.trace ?? logTail(loader.logFile)}`)
      progress(`  ${fmt(count)} / ${fmt(n)} rows (${seconds(t0)})`)
    }
    if (Date.now() - moved > 120_000)
      throw new Error(
        `nothing loaded for 120 s (${fmt(count)} / ${fmt(n)} rows):\n${logTail(loader.logFile)}`,
      )
    await sleep(POLL_MS)
  }
}
