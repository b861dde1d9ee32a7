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
import { existsSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { type Config, configToEnv, loadConfig } from '../src/config/index.ts'
import { createPool } from '../src/db/index.ts'
import { createConsumer } from '../src/kafka/index.ts'
import { kafkaLibsDir } from '../src/shared/paths.ts'
import { heapFlags, SEMI_SPACE_MB } from '../src/shared/supervisor.ts'
import { sleep } from '../src/shared/time.ts'
import { allTopics, stationIds as stationNames } from '../test/plant.ts'
import { describeSpan, IngestMonitor, type Snapshot, type SpanStats } from './api-ingest-monitor.ts'
import { SENSOR_DATA } from './api-report.ts'
import {
  assertRunning,
  benchDir,
  checkInterrupted,
  cleanupNow,
  distCli,
  fmt,
  type LoadOptions,
  type Measurement,
  measure,
  onCleanup,
  progress,
  type Server,
  seconds,
  startChild,
  startKafka,
  waitQuiet,
} from './harness/index.ts'

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

const cacheDir = benchDir('bench-api')
const logDir = join(cacheDir, 'logs')

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

/** The broker, fresh (no topics, no offsets: the database's etl_offsets is empty too). */
async function startIngestKafka(base: Config) {
  const kafka = await startKafka(cacheDir, {
    port: KAFKA_PORT,
    controllerPort: KAFKA_CONTROLLER_PORT,
    heapMb: base.kafkaHeapMb,
    partitions: base.topicPartitions,
    topicPrefix: base.topicPrefix,
  })
  return { config: { ...base, ...kafka.login }, pid: kafka.pids[0]!, stop: kafka.stop }
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
    { env, logFile: join(logDir, 'etl.log') },
  )
  const sim = startChild('simulator', process.execPath, [distCli, 'simulate'], {
    env,
    logFile: join(logDir, 'simulator.log'),
  })
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
    await sleep(500)
    s = await monitor.snapshot()
  }
  const first = s
  progress(`ingest: the ETL's first commit after ${seconds(t0)}; settling (lag under ${fmt(rate)})…`)
  const t1 = performance.now()
  for (;;) {
    await sleep(1000)
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
  const kafka = await startIngestKafka(base)
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
    await kafka.stop()
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
