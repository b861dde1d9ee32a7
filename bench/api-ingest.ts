/**
 * bench:api under ingest: the ETL loads `--ingest-rate` readings/s into the bench's database
 * while `/sensor-data?limit=100` is measured, on our API and then on FastAPI, the ingest running
 * through both. Every ETL commit empties our API's response cache (it LISTENs to the ETL's
 * NOTIFY), so this is the cache's hit rate, and the API's speed, with a plant writing.
 *
 * The ingest, as production runs it, each part a child process with the config in its env:
 *  - an embedded Kafka broker on 127.0.0.1:39092 (controller 39093), its data under
 *    .cache/bench-api/kafka, fresh for each run;
 *  - `node dist/cli.js simulate`, paced: 4 stations × N sensors, one reading each per 100 ms;
 *  - `node dist/cli.js etl follow` into the bench's database.
 * The rates achieved in each measured window are measured, not assumed (bench/api-ingest-monitor.ts).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { allTopics, stationNames } from '../src/catalog/index.ts'
import { type Config, configToEnv, loadConfig } from '../src/config/index.ts'
import { createPool } from '../src/db/index.ts'
import { createAdmin, createConsumer, ensureTopics, scramLogin } from '../src/kafka/index.ts'
import { startEmbeddedKafka } from '../src/services/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { kafkaLibsDir } from '../src/shared/paths.ts'
import { alive, stopPid } from '../src/shared/process.ts'
import { heapFlags, SEMI_SPACE_MB } from '../src/shared/supervisor.ts'
import { describeSpan, IngestMonitor, type Snapshot, type SpanStats } from './api-ingest-monitor.ts'
import { type LoadOptions, type Measurement, measure, waitQuiet } from './api-measure.ts'
import { SENSOR_DATA } from './api-report.ts'
import {
  assertRunning,
  cacheDir,
  checkInterrupted,
  cleanupNow,
  distCli,
  onCleanup,
  startChild,
} from './api-run.ts'
import type { Server } from './api-servers.ts'
import { fmt, progress, seconds } from './lib.ts'

export const KAFKA_PORT = 39092
export const KAFKA_CONTROLLER_PORT = 39093
const SIM_INTERVAL_MS = 100
/** after the first commit: at least this long, and until the lag is under a second of readings */
const SETTLE_MIN_S = 5
const SETTLE_MAX_S = 30

export interface IngestRun {
  rate: number
  /** readings/s the simulator is paced at (stations × sensors / interval) */
  nominal: number
  runs: { m: Measurement; span?: SpanStats }[]
  /** from the first commit to the end of the last window */
  whole?: SpanStats
  /** children that exited while they should have run */
  exits: string[]
}

const kafkaHome = join(cacheDir, 'kafka')

/** Fails fast, before the long data load, when the ingest could not start. */
export function checkIngestPrerequisites(): void {
  if (!existsSync(kafkaLibsDir) || readdirSync(kafkaLibsDir).length === 0)
    throw new Error(
      `the ingest run needs the Kafka jars in ${kafkaLibsDir} (node scripts/setup.mjs), or --ingest-rate 0`,
    )
  try {
    execFileSync('java', ['-version'], { stdio: 'ignore' })
  } catch {
    throw new Error('the ingest run needs Java 17+ on PATH for its Kafka broker, or --ingest-rate 0')
  }
}

/** A broker left running by a killed earlier run holds the ports and the log dirs: stop it. */
async function stopOrphanBroker(): Promise<void> {
  const pidFile = join(kafkaHome, 'broker.pid')
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8'))
  if (!pid || !alive(pid)) return
  let cmdline = ''
  try {
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
  } catch {
    return
  }
  if (!cmdline.includes('kafka.Kafka')) return
  progress(`stopping Kafka broker ${pid} left running by an earlier run…`)
  await stopPid(pid, 'SIGTERM', 30_000)
}

/** The broker, fresh (no topics, no offsets: the database's etl_offsets is empty too). */
async function startKafka(base: Config) {
  await stopOrphanBroker()
  rmSync(kafkaHome, { recursive: true, force: true })
  const t0 = performance.now()
  progress(`Kafka: starting a broker on 127.0.0.1:${KAFKA_PORT} (data in ${kafkaHome})…`)
  const early = onCleanup('Kafka', () => stopOrphanBroker())
  const broker = await startEmbeddedKafka({
    dataDir: cacheDir,
    port: KAFKA_PORT,
    controllerPort: KAFKA_CONTROLLER_PORT,
    heapMb: base.kafkaHeapMb,
    partitions: base.topicPartitions,
    log: createLogger('bench', 'warn'),
  })
  early.run = () => broker.stop()
  const config = { ...base, ...scramLogin(broker.brokers, 'admin', broker.secrets.admin) }
  // Created here, once: the simulator and the ETL would both try at start.
  const admin = createAdmin(config, 'bench-api-admin')
  try {
    await ensureTopics(
      admin,
      allTopics(config.topicPrefix),
      config.topicPartitions,
      createLogger('bench', 'warn'),
    )
  } finally {
    await admin.close()
  }
  progress(`Kafka: up (pid ${broker.process.pid}) in ${seconds(t0)}`)
  return { config, pid: broker.process.pid!, stop: early }
}

/** Sensors per station for `rate` readings/s at one reading per sensor every SIM_INTERVAL_MS. */
const sensorsFor = (rate: number) =>
  Math.min(10_000, Math.max(1, Math.round((rate * SIM_INTERVAL_MS) / 1000 / stationNames.length)))

function startPipeline(config: Config) {
  const env = { ...process.env, ...configToEnv(config), EVF_SUPERVISED: '1' }
  // As `stack up` starts it: with the V8 flags of its settings.
  const etl = startChild(
    'etl',
    process.execPath,
    [...heapFlags(config.etlHeapMb, SEMI_SPACE_MB), distCli, 'etl', 'follow'],
    { env },
  )
  const sim = startChild('simulator', process.execPath, [distCli, 'simulate'], { env })
  progress(
    `ingest: etl follow (pid ${etl.child.pid}) and simulate (pid ${sim.child.pid}, ` +
      `${stationNames.length} stations × ${config.simSensorsPerStation} sensors every ${config.simIntervalMs} ms)`,
  )
  return { etl, sim }
}

type Pipeline = ReturnType<typeof startPipeline>

const assertPipeline = (p: Pipeline) => {
  assertRunning('etl follow', p.etl.child, p.etl.logFile)
  assertRunning('the simulator', p.sim.child, p.sim.logFile)
}

/** Waits for the ETL's first commit, then for it to catch up with the backlog of its start. */
async function settle(
  monitor: IngestMonitor,
  p: Pipeline,
  rate: number,
): Promise<{ first: Snapshot; now: Snapshot }> {
  const t0 = performance.now()
  let s = await monitor.snapshot()
  while (s.loaded === 0) {
    checkInterrupted()
    assertPipeline(p)
    if (performance.now() - t0 > 120_000) throw new Error('the ETL committed nothing within 120 s')
    await new Promise((r) => setTimeout(r, 500))
    s = await monitor.snapshot()
  }
  const first = s
  progress(`ingest: the ETL's first commit after ${seconds(t0)}; settling (lag under ${fmt(rate)})…`)
  const t1 = performance.now()
  for (;;) {
    await new Promise((r) => setTimeout(r, 1000))
    checkInterrupted()
    assertPipeline(p)
    s = await monitor.snapshot()
    const waited = (performance.now() - t1) / 1000
    if ((waited >= SETTLE_MIN_S && s.produced - s.loaded < rate) || waited >= SETTLE_MAX_S) break
  }
  progress(`ingest: lag ${fmt(s.produced - s.loaded)} after ${seconds(t1)} of settling`)
  return { first, now: s }
}

export interface IngestContext {
  databaseUrl: string
  postmaster: number
  ours: Server
  fastapi: Server
  rate: number
  load: LoadOptions
}

/** Starts the ingest, measures ours then FastAPI under it, stops it. */
export async function runIngest(ctx: IngestContext): Promise<IngestRun> {
  const { rate, load } = ctx
  // The machine must be quiet before the ingest starts: during it, it never is.
  await waitQuiet(load.quietWait)
  const base = loadConfig(
    {
      dataDir: cacheDir,
      logLevel: 'info',
      databaseUrl: ctx.databaseUrl,
      simIntervalMs: SIM_INTERVAL_MS,
      simSensorsPerStation: sensorsFor(rate),
    },
    {},
  )
  const kafka = await startKafka(base)
  const config = kafka.config
  const nominal = (stationNames.length * config.simSensorsPerStation * 1000) / config.simIntervalMs
  const out: IngestRun = { rate, nominal, runs: [], exits: [] }
  const pool = createPool(ctx.databaseUrl, { max: 2, statementTimeoutMs: 0, application: 'bench-api-ingest' })
  const consumer = createConsumer(config, 'bench-api-monitor', 'bench-api-monitor')
  const closeMonitor = onCleanup('the ingest monitor', async () => {
    await consumer.close().catch(() => undefined)
    await pool.end()
  })
  const monitor = new IngestMonitor(pool, consumer, allTopics(config.topicPrefix))
  const pipeline = startPipeline(config)
  const { first, now } = await settle(monitor, pipeline, rate)
  monitor.start(now)
  try {
    for (const [system, server] of [
      ['ours', ctx.ours],
      ['FastAPI', ctx.fastapi],
    ] as const) {
      out.runs.push(await measureUnder(monitor, ctx, system, server, [pipeline, kafka.pid]))
    }
    out.whole = await monitor.span(first, await monitor.snapshot())
  } finally {
    await monitor.stop()
    for (const [name, c] of [
      ['etl follow', pipeline.etl.child],
      ['the simulator', pipeline.sim.child],
    ] as const) {
      if (c.exitCode !== null || c.signalCode !== null)
        out.exits.push(`${name} exited (${c.exitCode ?? c.signalCode})`)
    }
    // Stopped now, in order, so the report is not written beside a busy machine.
    await cleanupNow(pipeline.sim.stop)
    await cleanupNow(pipeline.etl.stop)
    await cleanupNow(closeMonitor)
    await cleanupNow(kafka.stop)
  }
  return out
}

async function measureUnder(
  monitor: IngestMonitor,
  ctx: IngestContext,
  system: 'ours' | 'FastAPI',
  server: Server,
  [p, kafkaPid]: [Pipeline, number],
): Promise<IngestRun['runs'][number]> {
  let begin: Snapshot | undefined
  let span: SpanStats | undefined
  const ingestPids = [p.etl.child.pid!, p.sim.child.pid!, kafkaPid]
  const m = await measure(
    {
      system,
      label: SENSOR_DATA,
      base: server.base,
      headers: server.headers,
      path: SENSOR_DATA,
      pid: server.pid,
      postmaster: ctx.postmaster,
    },
    ctx.load,
    {
      quiet: false,
      countCache: system === 'ours',
      ingestPids,
      window: {
        begin: async () => {
          begin = await monitor.snapshot()
        },
        end: async () => {
          span = await monitor.span(begin!, await monitor.snapshot())
        },
      },
    },
  )
  if (span) progress(`  under ingest: ${describeSpan(span)}`)
  return { m, span }
}
