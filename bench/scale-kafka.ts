/**
 * bench:scale's parts A and C: Kafka (one node, or three with RF 3), `evf simulate` producing
 * the readings and `evf etl follow` loading them, each measured in CPU seconds per component
 * from /proc.
 */
import { join } from 'node:path'
import { type Config, configToEnv, loadConfig } from '../src/config/index.ts'
import { createPool } from '../src/db/index.ts'
import { kafkaEnv, scramLogin } from '../src/kafka/index.ts'
import { freePort, KafkaCluster } from '../src/services/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { sleep } from '../src/shared/time.ts'
import {
  benchDir,
  cleanupNow,
  createStationTopics,
  distCli,
  envInt,
  exited,
  fmt,
  type Kafka,
  loadSpan,
  logTail,
  machineBusy,
  onCleanup,
  portFree,
  progress,
  reapedCpu,
  requirePid,
  seconds,
  startChild,
  treesTotal,
  waitQuiet,
} from './harness/index.ts'

export const N = envInt('BENCH_SCALE_MESSAGES', 200_000)
/** Partitions of each station topic: 4 topics × 6, so that 4 workers all get several. */
export const PARTITIONS = envInt('BENCH_SCALE_PARTITIONS', 6)
export const SENSORS_PER_STATION = 25
export const dataDir = benchDir('bench-scale')
const logsDir = join(dataDir, 'logs')
const log = createLogger('bench', 'warn')
export const base = loadConfig({ dataDir, topicPartitions: PARTITIONS, logLevel: 'warn' }, {})

/** CPU seconds per 1,000 readings. */
export const per1000 = (cpu: number, readings: number): number => (cpu / readings) * 1000

/**
 * A base port whose +2 and +4 are free too (a cluster's node i listens on base + 2(i-1)), none
 * of them in `taken`.
 */
async function freeBase(taken: Set<number>): Promise<number> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const base = await freePort()
    const ports = [base, base + 2, base + 4]
    if (ports.some((p) => p > 65535 || taken.has(p))) continue
    if ((await Promise.all(ports.map(portFree))).every(Boolean)) {
      for (const p of ports) taken.add(p)
      return base
    }
  }
  throw new Error('found no base port with +2 and +4 free')
}

export async function startThreeNodes(): Promise<Kafka> {
  const dir = join(dataDir, 'kafka-3')
  const taken = new Set<number>()
  const port = await freeBase(taken)
  const controllerPort = await freeBase(taken)
  const t0 = performance.now()
  progress(`Kafka, 3 nodes: starting on ports ${port}, ${port + 2}, ${port + 4}…`)
  const cluster = new KafkaCluster({
    dataDir: dir,
    port,
    controllerPort,
    heapMb: base.kafkaHeapMb,
    partitions: PARTITIONS,
    log,
    nodes: 3,
    restartNodes: false,
  })
  // Registered first: a start that fails half-way still stops the nodes it started.
  const stop = onCleanup('Kafka (3 nodes)', () => cluster.stop())
  await cluster.start()
  const login = scramLogin(cluster.brokers, 'admin', cluster.secrets.admin)
  await createStationTopics(login, base.topicPrefix, PARTITIONS)
  const pids = [1, 2, 3].map((i) => requirePid(join(dir, 'kafka', `node-${i}`, 'broker.pid')))
  progress(`Kafka, 3 nodes: ${cluster.brokers} answer after ${seconds(t0)} (RF 3, min.insync.replicas=2)`)
  const brokers = cluster.brokers
  return { label: '3 nodes, RF 3', nodes: 3, brokers, login, pids, stop: () => cleanupNow(stop) }
}

/** The environment of `evf simulate` and `evf etl follow`: the settings, logged in as admin. */
const childEnv = (config: Config, kafka: Kafka, extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  ...process.env,
  ...configToEnv(config),
  ...kafkaEnv(kafka.login),
  EVF_LOG_LEVEL: 'warn',
  // each exits if this process dies without stopping it
  EVF_SUPERVISED: '1',
  ...extra,
})

/** A CLI command in a process group of its own, its output in logs/<name>.log, stopped by cleanup. */
const startCli = (name: string, args: string[], env: NodeJS.ProcessEnv, stdout: 'pipe' | 'log' = 'log') =>
  startChild(name, process.execPath, [distCli, ...args], {
    env,
    stdout,
    logFile: join(logsDir, `${name}.log`),
    graceMs: 30_000,
  })

// ── A/C: produce ──

export interface Produce {
  kafka: string
  /** readings/s by the simulator's own clock (connected → last acknowledgement) */
  rate: number
  wallSeconds: number
  /** CPU seconds over the simulator's whole life */
  simCpu: number
  brokerCpu: number
  /** cores used by anything else on the machine meanwhile */
  other: number
}

export async function produce(config: Config, kafka: Kafka): Promise<Produce> {
  await waitQuiet(20)
  progress(`produce (${kafka.label}): ${fmt(N)} readings, ${SENSORS_PER_STATION} sensors per station…`)
  const brokers0 = treesTotal(kafka.pids)
  const reaped0 = reapedCpu()
  const busy0 = machineBusy()
  const t0 = performance.now()
  const { child, logFile, stop } = startCli(
    `simulate-${kafka.nodes}`,
    ['simulate'],
    childEnv(config, kafka, {
      EVF_SIM_COUNT: String(N),
      EVF_SIM_SENSORS_PER_STATION: String(SENSORS_PER_STATION),
    }),
    'pipe',
  )
  let out = ''
  child.stdout!.on('data', (d) => (out += d))
  const ticker = setInterval(() => progress(`  producing… ${seconds(t0)}`), 5000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
  clearInterval(ticker)
  const wallSeconds = (performance.now() - t0) / 1000
  const simCpu = reapedCpu() - reaped0
  const brokerCpu = treesTotal(kafka.pids) - brokers0
  const busy = machineBusy() - busy0
  await cleanupNow(stop)
  if (code !== 0) throw new Error(`simulate exited ${code}; ${logFile}:\n${logTail(logFile)}`)
  const summary = JSON.parse(out.trim().split('\n').at(-1) ?? '{}') as {
    produced?: number
    durationMs?: number
  }
  if (summary.produced !== N) throw new Error(`simulate produced ${summary.produced}, expected ${N}`)
  const p: Produce = {
    kafka: kafka.label,
    rate: N / ((summary.durationMs ?? wallSeconds * 1000) / 1000),
    wallSeconds,
    simCpu,
    brokerCpu,
    other: Math.max(0, busy - simCpu - brokerCpu) / wallSeconds,
  }
  progress(
    `  ${fmt(p.rate)} readings/s (${wallSeconds.toFixed(1)} s wall); CPU: simulator ${simCpu.toFixed(2)} s, ` +
      `brokers ${brokerCpu.toFixed(2)} s; others ${p.other.toFixed(2)} cores`,
  )
  return p
}

// ── A/C: the ETL ──

export interface Etl {
  kafka: string
  workers: number
  /** rows/s from the first commit to the last (created_at), as bench:etl measures */
  rate: number
  /** readings committed in the CPU window (first poll that saw a commit → all loaded) */
  windowRows: number
  windowSeconds: number
  etlCpu: number
  pgCpu: number
  brokerCpu: number
  /** CPU of the ETL's processes over their whole life, start-up and stop included */
  etlCpuTotal: number
  other: number
}

export async function runEtl(
  config: Config,
  kafka: Kafka,
  workers: number,
  postmaster: number,
): Promise<Etl> {
  const pool = createPool(config.databaseUrl, { max: 1, statementTimeoutMs: 0 })
  try {
    // From the first offset again: no rows, no positions (src/db/migrations).
    await pool.query('TRUNCATE sensor_data, dead_letters, etl_offsets, etl_lag, rollup_1m, rollup_1h')
    await waitQuiet(20)
    progress(`ETL (${kafka.label}): etl follow --etl-workers ${workers}…`)
    const reaped0 = reapedCpu()
    const t0 = performance.now()
    const { child, logFile, stop } = startCli(
      `etl-${kafka.nodes}-${workers}`,
      ['etl', 'follow', '--etl-workers', String(workers)],
      // a group of its own for each run: no member of an earlier one to wait for
      childEnv(config, kafka, { EVF_ETL_GROUP_ID: `bench-scale-${kafka.nodes}-${workers}-${Date.now()}` }),
    )
    // Positions only (a few dozen rows): the poll costs PostgreSQL next to nothing.
    const loaded = async () =>
      Number(
        (await pool.query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text AS n FROM etl_offsets'))
          .rows[0]!.n,
      )
    const snapshot = (rows: number) => ({
      rows,
      at: performance.now(),
      etl: treesTotal([child.pid!]),
      pg: treesTotal([postmaster]),
      brokers: treesTotal(kafka.pids),
      busy: machineBusy(),
    })
    // The CPU window opens at the first commit seen: the processes' start-up is not in it.
    let first: ReturnType<typeof snapshot> | undefined
    let last: ReturnType<typeof snapshot> | undefined
    let told = performance.now()
    const deadline = Date.now() + Math.max(300_000, N * 5)
    while (!last) {
      if (exited(child))
        throw new Error(`etl follow exited (${child.exitCode ?? child.signalCode}):\n${logTail(logFile)}`)
      if (Date.now() > deadline)
        throw new Error(`etl follow did not load ${fmt(N)} readings in time:\n${logTail(logFile)}`)
      const n = await loaded()
      if (n >= N) last = snapshot(n)
      else if (!first && n > 0) first = snapshot(n)
      if (performance.now() - told > 3000) {
        progress(`  ${fmt(n)} / ${fmt(N)} readings loaded (${seconds(t0)})`)
        told = performance.now()
      }
      if (!last) await sleep(200)
    }
    await cleanupNow(stop)
    const etlCpuTotal = reapedCpu() - reaped0
    const span = await loadSpan(pool)
    if (span.rows + span.dead !== N)
      throw new Error(`expected ${N} readings loaded, found ${span.rows} rows and ${span.dead} dead letters`)
    // Loaded in one commit (a tiny N): no span to measure a rate over.
    if (!first || span.seconds <= 0)
      throw new Error(`${fmt(N)} readings are too few to measure: raise BENCH_SCALE_MESSAGES`)
    const windowSeconds = (last.at - first.at) / 1000
    const e: Etl = {
      kafka: kafka.label,
      workers,
      rate: span.rate,
      windowRows: last.rows - first.rows,
      windowSeconds,
      etlCpu: last.etl - first.etl,
      pgCpu: last.pg - first.pg,
      brokerCpu: last.brokers - first.brokers,
      etlCpuTotal,
      other: 0,
    }
    e.other = Math.max(0, last.busy - first.busy - e.etlCpu - e.pgCpu - e.brokerCpu) / windowSeconds
    progress(
      `  ${fmt(e.rate)} rows/s; in the window (${fmt(e.windowRows)} readings, ${windowSeconds.toFixed(1)} s) CPU: ` +
        `ETL ${e.etlCpu.toFixed(2)} s, PostgreSQL ${e.pgCpu.toFixed(2)} s, brokers ${e.brokerCpu.toFixed(2)} s; ` +
        `others ${e.other.toFixed(2)} cores`,
    )
    return e
  } finally {
    await pool.end()
  }
}
