/**
 * `npm run bench:scale`: what each piece of the pipeline costs, measured side by side in one run
 * on this machine (issue 14, part 4), for the capacity plan in docs/scaling.md.
 *
 *  A. Kafka, 1 node: `node dist/cli.js simulate` produces BENCH_SCALE_MESSAGES readings
 *     (default 200,000), then `node dist/cli.js etl follow` loads them with 1, 2 and 4 workers
 *     (the tables truncated between runs, so each starts again from the first offset).
 *  B. The API (`node dist/cli.js api`, its cache off) reading from the primary, then from a hot
 *     standby of it (DATABASE_READ_URL), driven by autocannon.
 *  C. Kafka, 3 nodes with replication factor 3 and min.insync.replicas=2: the same produce and
 *     the same 1-worker load. Should the cluster fail, A and B are still reported.
 *
 * Every figure is a cost: CPU seconds per 1,000 readings of each component (from /proc), or
 * requests per CPU-second of the API, each with its ratio against the baseline of the same run.
 * The machine has few cores shared by everything, so the rates are not a cluster's speed.
 * Prints the tables and appends them to docs/benchmarks.md ("Scaling (bench:scale)"). Everything
 * it starts runs under .cache/bench-scale and is stopped on exit, error or Ctrl-C.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { chmodSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { allTopics } from '../src/catalog/index.ts'
import { type Config, configToEnv, loadConfig } from '../src/config/index.ts'
import { createPool, migrate } from '../src/db/index.ts'
import { createAdmin, ensureTopics, type KafkaSettings, kafkaEnv, scramLogin } from '../src/kafka/index.ts'
import {
  freePort,
  KafkaCluster,
  startEmbeddedKafka,
  startEmbeddedPostgres,
  startStandby,
} from '../src/services/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { stopChild } from '../src/shared/process.ts'
import { sleep } from '../src/shared/time.ts'
import { invalid, type LoadOptions, type Measurement, measure, waitQuiet } from './api-measure.ts'
import { cleanup, cleanupNow, distCli, installSignalHandlers, logTail, onCleanup } from './api-run.ts'
import { ensureDist, startOurApi } from './api-servers.ts'
import { childPids, fmt, progress, record, seconds, table } from './lib.ts'
import { CLK_TCK, machineBusy } from './proc.ts'

const positive = (name: string, fallback: number): number => {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`)
  return n
}
const N = positive('BENCH_SCALE_MESSAGES', 200_000)
/** Partitions of each station topic: 4 topics × 6, so that 4 workers all get several. */
const PARTITIONS = positive('BENCH_SCALE_PARTITIONS', 6)
const WORKERS = [1, 2, 4]
const LOAD: LoadOptions = {
  connections: 16,
  duration: positive('BENCH_SCALE_API_SECONDS', 10),
  warmup: 2,
  quietWait: 30,
}
const API_PATH = '/sensor-data?limit=100&station=paint'
const SENSORS_PER_STATION = 25

const dataDir = join(repoRoot, '.cache', 'bench-scale')
const logsDir = join(dataDir, 'logs')
const log = createLogger('bench', 'warn')

// ── measuring ──

/**
 * CPU seconds (user + system) of this process's children that have exited and been waited for
 * (`cutime` + `cstime` of /proc/self/stat): a child's whole life, start-up and exit included,
 * which /proc/<pid> can no longer tell once it is gone.
 */
const reapedCpu = (): number => statCpu('self', true)

/**
 * user + system CPU seconds of a process and of its children it has waited for; with `reaped`,
 * only the children's (0 when gone).
 */
function statCpu(pid: number | 'self', reaped = false): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number)
    const own = reaped ? 0 : f[11]! + f[12]!
    return (own + f[13]! + f[14]!) / CLK_TCK
  } catch {
    return 0
  }
}

/**
 * CPU seconds of process trees (each root and its direct children) since they started, children
 * that have exited included: a child's time moves into its parent's `cutime` when it is waited
 * for, so the sum never loses it and two sums subtract. (proc.ts's treeCpu drops a child that
 * exits between two snapshots: PostgreSQL's autovacuum workers, a backend that disconnects.)
 */
const treesTotal = (roots: readonly number[]): number =>
  roots.flatMap((root) => [root, ...childPids(root)]).reduce((sum, pid) => sum + statCpu(pid), 0)

const pidIn = (file: string): number => {
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0])
  if (!pid) throw new Error(`no pid in ${file}`)
  return pid
}

/** CPU seconds per 1,000 readings. */
const per1000 = (cpu: number, readings: number): number => (cpu / readings) * 1000

/** Whether nothing listens on 127.0.0.1:`port` now. */
const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })

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

// ── the services ──

interface Kafka {
  label: string
  nodes: number
  login: KafkaSettings
  /** the brokers' JVMs (every thread counts in its process) */
  pids: number[]
  stop: () => Promise<void>
}

const base = loadConfig({ dataDir, topicPartitions: PARTITIONS, logLevel: 'warn' }, {})

async function createTopics(login: KafkaSettings): Promise<void> {
  const admin = createAdmin(login, 'bench-scale-admin')
  try {
    await ensureTopics(admin, allTopics(base.topicPrefix), PARTITIONS, log, login.kafkaUsername)
  } finally {
    await admin.close()
  }
}

async function startSingleNode(): Promise<Kafka> {
  const dir = join(dataDir, 'kafka-1')
  const t0 = performance.now()
  progress('Kafka, 1 node: starting…')
  const broker = await startEmbeddedKafka({
    dataDir: dir,
    port: await freePort(),
    controllerPort: await freePort(),
    heapMb: base.kafkaHeapMb,
    partitions: PARTITIONS,
    log,
  })
  const stop = onCleanup('Kafka (1 node)', () => broker.stop())
  const login = scramLogin(broker.brokers, 'admin', broker.secrets.admin)
  await createTopics(login)
  progress(`Kafka, 1 node: ${broker.brokers} answers after ${seconds(t0)}`)
  return {
    label: '1 node',
    nodes: 1,
    login,
    pids: [broker.process.pid!],
    stop: () => cleanupNow(stop),
  }
}

async function startThreeNodes(): Promise<Kafka> {
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
  await createTopics(login)
  const pids = [1, 2, 3].map((i) => pidIn(join(dir, 'kafka', `node-${i}`, 'broker.pid')))
  progress(`Kafka, 3 nodes: ${cluster.brokers} answer after ${seconds(t0)} (RF 3, min.insync.replicas=2)`)
  return { label: '3 nodes, RF 3', nodes: 3, login, pids, stop: () => cleanupNow(stop) }
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
function startCli(name: string, args: string[], env: NodeJS.ProcessEnv, stdout: 'pipe' | 'log' = 'log') {
  mkdirSync(logsDir, { recursive: true })
  const logFile = join(logsDir, `${name}.log`)
  const out = openSync(logFile, 'w')
  const child = spawn(process.execPath, [distCli, ...args], {
    env,
    detached: true,
    stdio: ['ignore', stdout === 'pipe' ? 'pipe' : out, out],
  })
  const stop = onCleanup(name, () => stopChild(child, 30_000, 'SIGTERM', true))
  return { child, logFile, stop }
}

const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

// ── A/C: produce ──

interface Produce {
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

async function produce(config: Config, kafka: Kafka): Promise<Produce> {
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

interface Etl {
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

async function runEtl(config: Config, kafka: Kafka, workers: number, postmaster: number): Promise<Etl> {
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
    const { rows } = await pool.query<{ rows: number; dead: number; seconds: number; first_batch: number }>(
      `SELECT count(*)::int AS rows, (SELECT count(*)::int FROM dead_letters) AS dead,
              extract(epoch FROM max(created_at) - min(created_at))::float8 AS seconds,
              (SELECT count(*)::int FROM sensor_data WHERE created_at = (SELECT min(created_at) FROM sensor_data)) AS first_batch
       FROM sensor_data`,
    )
    const span = rows[0]!
    if (span.rows + span.dead !== N)
      throw new Error(`expected ${N} readings loaded, found ${span.rows} rows and ${span.dead} dead letters`)
    // Loaded in one commit (a tiny N): no span to measure a rate over.
    if (!first || span.seconds <= 0)
      throw new Error(`${fmt(N)} readings are too few to measure: raise BENCH_SCALE_MESSAGES`)
    const windowSeconds = (last.at - first.at) / 1000
    const e: Etl = {
      kafka: kafka.label,
      workers,
      // The span starts at the first batch's commit, so that batch's rows are not counted in it.
      rate: (span.rows - span.first_batch) / span.seconds,
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

// ── B: the API on the primary and on the standby ──

interface ApiRun {
  readsFrom: string
  m: Measurement
  primaryCores: number
  standbyCores: number
  /** cores used by anything else on the machine meanwhile */
  others: number
}

async function apiRuns(primaryUrl: string, primaryPid: number): Promise<ApiRun[]> {
  const t0 = performance.now()
  progress('PostgreSQL standby: cloning the primary (low-level backup API) and streaming…')
  const standby = await startStandby({ primaryUrl, dataDir, port: 0, log })
  const stopStandby = onCleanup('PostgreSQL standby', () => standby.stop())
  const standbyPid = pidIn(join(dataDir, 'postgres-standby', 'postmaster.pid'))
  const primary = createPool(primaryUrl, { max: 1 })
  const replica = createPool(standby.url, { max: 1 })
  try {
    const count = async (pool: typeof primary) =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_data')).rows[0]!.n
    const want = await count(primary)
    for (let waited = 0; (await count(replica)) !== want; waited += 200) {
      if (waited > 60_000) throw new Error('the standby did not catch up with the primary in 60 s')
      await sleep(200)
    }
    progress(`PostgreSQL standby on port ${standby.port} serves ${fmt(want)} rows after ${seconds(t0)}`)
    const runs: ApiRun[] = []
    for (const [readsFrom, env] of [
      ['primary', {}],
      ['standby', { DATABASE_READ_URL: standby.url }],
    ] as const) {
      // EVF_API_CACHE_MS=0: every request reaches PostgreSQL.
      const api = await startOurApi(primaryUrl, { EVF_API_CACHE_MS: '0', ...env }, `scale-api-${readsFrom}`)
      // Both servers' CPU, exited backends and autovacuum workers included (treesTotal).
      let at = 0
      let primary0 = 0
      let standby0 = 0
      let primaryCores = 0
      let standbyCores = 0
      try {
        const m = await measure(
          {
            system: 'ours, no cache',
            label: `reads from the ${readsFrom}`,
            base: api.base,
            path: API_PATH,
            headers: api.headers,
            pid: api.pid,
            postmaster: primaryPid,
          },
          LOAD,
          {
            window: {
              begin: async () => {
                primary0 = treesTotal([primaryPid])
                standby0 = treesTotal([standbyPid])
                at = performance.now()
              },
              end: async () => {
                const elapsed = (performance.now() - at) / 1000
                primaryCores = (treesTotal([primaryPid]) - primary0) / elapsed
                standbyCores = (treesTotal([standbyPid]) - standby0) / elapsed
              },
            },
          },
        )
        if (invalid(m))
          throw new Error(
            `the API reading from the ${readsFrom} failed: ${m.failure ?? `${m.result?.non2xx} non-2xx, ${m.result?.errors} errors`}`,
          )
        // measure() counts the standby as another process: it is ours.
        const others = Math.max(0, m.cpu.other + m.cpu.postgres - primaryCores - standbyCores)
        runs.push({ readsFrom, m, primaryCores, standbyCores, others })
      } finally {
        await api.stop()
      }
    }
    return runs
  } finally {
    await replica.end()
    await cleanupNow(stopStandby)
    // No standby streams from it any more: the primary need not keep WAL for it.
    await primary
      .query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'evf_standby'`,
      )
      .catch(() => undefined)
    await primary.end()
  }
}

// ── the run ──

const ratio = (x: number, baseline: number): string =>
  baseline > 0 && Number.isFinite(x / baseline) ? `${(x / baseline).toFixed(2)}×` : '—'
const s3 = (x: number): string => x.toFixed(3)

async function main(): Promise<void> {
  const buildNote = ensureDist(false)
  rmSync(dataDir, { recursive: true, force: true })
  mkdirSync(logsDir, { recursive: true })
  // As root, PostgreSQL runs as `postgres`, which must reach its directories under this one.
  chmodSync(dataDir, 0o755)

  progress('PostgreSQL: starting and migrating…')
  const db = await startEmbeddedPostgres({ dataDir, port: 0, log })
  onCleanup('PostgreSQL', () => db.stop())
  const postmaster = pidIn(join(dataDir, 'postgres', 'postmaster.pid'))
  {
    const pool = createPool(db.url, { max: 1 })
    try {
      await migrate(pool)
    } finally {
      await pool.end()
    }
  }
  const config: Config = { ...base, databaseUrl: db.url }

  // A. One node: produce, then the ETL with 1, 2 and 4 workers on the same backlog.
  const one = await startSingleNode()
  const produced1 = await produce(config, one)
  const etl1: Etl[] = []
  for (const workers of WORKERS) etl1.push(await runEtl(config, one, workers, postmaster))
  await one.stop()

  // B. The API, on the rows the last load left, from the primary and from a standby.
  const api = await apiRuns(db.url, postmaster)

  // C. Three nodes, RF 3: the same produce and the same 1-worker load.
  let produced3: Produce | undefined
  let etl3: Etl | undefined
  let clusterFailure: string | undefined
  try {
    const three = await startThreeNodes()
    try {
      produced3 = await produce(config, three)
      etl3 = await runEtl(config, three, 1, postmaster)
    } finally {
      await three.stop()
    }
  } catch (error) {
    clusterFailure = error instanceof Error ? error.message : String(error)
    progress(`Kafka, 3 nodes: FAILED — ${clusterFailure}`)
  }

  report({ produced1, etl1, api, produced3, etl3, clusterFailure, buildNote })
}

function report(r: {
  produced1: Produce
  etl1: Etl[]
  api: ApiRun[]
  produced3: Produce | undefined
  etl3: Etl | undefined
  clusterFailure: string | undefined
  buildNote: string
}): void {
  const { produced1: p1, produced3: p3, etl3: e3 } = r
  const e1 = r.etl1[0]!
  const dash = '—'
  const row = (what: string, a: number, b: number | undefined, show: (x: number) => string) => [
    what,
    show(a),
    b === undefined ? dash : show(b),
    b === undefined ? dash : ratio(b, a),
  ]
  const brokerTotal = (p: Produce, e: Etl) => per1000(p.brokerCpu, N) + per1000(e.brokerCpu, e.windowRows)

  const kafkaTable = table(
    ['', 'Kafka 1 node (baseline)', 'Kafka 3 nodes, RF 3', '3 nodes ÷ 1 node'],
    [
      row('produce: readings/s (simulator, acks=all, idempotent)', p1.rate, p3?.rate, fmt),
      row(
        'produce: simulator CPU s per 1,000 readings',
        per1000(p1.simCpu, N),
        p3 && per1000(p3.simCpu, N),
        s3,
      ),
      row(
        'produce: brokers’ CPU s per 1,000 readings (all nodes)',
        per1000(p1.brokerCpu, N),
        p3 && per1000(p3.brokerCpu, N),
        s3,
      ),
      row('ETL, 1 worker: rows/s', e1.rate, e3?.rate, fmt),
      row(
        'ETL: ETL processes’ CPU s per 1,000 readings',
        per1000(e1.etlCpu, e1.windowRows),
        e3 && per1000(e3.etlCpu, e3.windowRows),
        s3,
      ),
      row(
        'ETL: PostgreSQL CPU s per 1,000 readings',
        per1000(e1.pgCpu, e1.windowRows),
        e3 && per1000(e3.pgCpu, e3.windowRows),
        s3,
      ),
      row(
        'ETL: brokers’ CPU s per 1,000 readings (all nodes)',
        per1000(e1.brokerCpu, e1.windowRows),
        e3 && per1000(e3.brokerCpu, e3.windowRows),
        s3,
      ),
      row(
        'brokers, produce + ETL: CPU s per 1,000 readings',
        brokerTotal(p1, e1),
        p3 && e3 && brokerTotal(p3, e3),
        s3,
      ),
    ],
  )

  const workersTable = table(
    [
      'etl follow (Kafka 1 node)',
      'rows/s',
      '÷ 1 worker',
      'ETL CPU s / 1,000',
      'PostgreSQL CPU s / 1,000',
      'brokers CPU s / 1,000',
      'cores used: ETL + PostgreSQL + brokers',
    ],
    r.etl1.map((e) => [
      `--etl-workers ${e.workers}`,
      fmt(e.rate),
      ratio(e.rate, e1.rate),
      s3(per1000(e.etlCpu, e.windowRows)),
      s3(per1000(e.pgCpu, e.windowRows)),
      s3(per1000(e.brokerCpu, e.windowRows)),
      `${(e.etlCpu / e.windowSeconds).toFixed(2)} + ${(e.pgCpu / e.windowSeconds).toFixed(2)} + ${(e.brokerCpu / e.windowSeconds).toFixed(2)}`,
    ]),
  )

  const a0 = r.api[0]!
  const reqs = (a: ApiRun) => a.m.result!.requests.average
  const perApiCore = (a: ApiRun) => reqs(a) / a.m.cpu.server
  const perPgCore = (a: ApiRun) => reqs(a) / (a.primaryCores + a.standbyCores)
  const apiTable = table(
    [
      `\`${API_PATH}\`, cache off`,
      'req/s',
      '÷ primary',
      'p99 ms',
      'API CPU (cores)',
      'primary CPU',
      'standby CPU',
      'req per API CPU-s',
      'req per PostgreSQL CPU-s',
    ],
    r.api.map((a) => [
      `API reads from the ${a.readsFrom}`,
      fmt(reqs(a)),
      ratio(reqs(a), reqs(a0)),
      String(a.m.result!.latency.p99),
      a.m.cpu.server.toFixed(2),
      a.primaryCores.toFixed(2),
      a.standbyCores.toFixed(2),
      fmt(perApiCore(a)),
      fmt(perPgCore(a)),
    ]),
  )

  // The capacity plan's inputs: the baseline's cost per component and its rate per core.
  const cost = (what: string, c: number) => [what, s3(c), fmt(1000 / c)]
  const costsTable = table(
    ['component (Kafka 1 node, 1 ETL worker)', 'CPU s per 1,000 readings', 'readings/s per core'],
    [
      cost('simulator (producer)', per1000(p1.simCpu, N)),
      cost('Kafka broker, 1 node (produce + ETL fetch)', brokerTotal(p1, e1)),
      ...(p3 && e3 ? [cost('Kafka brokers, 3 nodes RF 3, all three together', brokerTotal(p3, e3))] : []),
      cost('ETL worker (`etl follow`, supervisor included)', per1000(e1.etlCpu, e1.windowRows)),
      cost('PostgreSQL (the ETL’s load)', per1000(e1.pgCpu, e1.windowRows)),
    ],
  )
  const apiCost = `API: ${fmt(perApiCore(a0))} req/s per API core (primary), ${fmt(perApiCore(r.api[1] ?? a0))} (standby); ${fmt(perPgCore(a0))} req per PostgreSQL CPU-second.`

  const notes = [
    `${fmt(N)} readings (${SENSORS_PER_STATION} sensors per station, 4 station topics × ${PARTITIONS} partitions), produced by \`node dist/cli.js simulate\` and loaded by \`node dist/cli.js etl follow\`, both as Kafka's admin user.`,
    'CPU from /proc: the simulator over its whole life (start-up included); the ETL (follow and its workers), PostgreSQL (the postmaster and its backends) and the brokers (every JVM) from the first commit seen to the last reading loaded (the readings of that window); ETL rows/s from the first commit to the last (`created_at`).',
    `ETL CPU over the processes' whole lives, start-up and stop included: ${r.etl1.map((e) => `${e.workers} worker${e.workers > 1 ? 's' : ''} ${e.etlCpuTotal.toFixed(1)} s`).join(', ')}${e3 ? `, 3 nodes ${e3.etlCpuTotal.toFixed(1)} s` : ''}.`,
    `Cores used by everything else on the machine (this process, the kernel, anyone else) in each measured window: ${[
      `produce 1 node ${p1.other.toFixed(2)}`,
      ...r.etl1.map((e) => `ETL ${e.workers} worker${e.workers > 1 ? 's' : ''} ${e.other.toFixed(2)}`),
      ...r.api.map((a) => `API on the ${a.readsFrom} ${a.others.toFixed(2)}`),
      ...(p3 ? [`produce 3 nodes ${p3.other.toFixed(2)}`] : []),
      ...(e3 ? [`ETL 3 nodes ${e3.other.toFixed(2)}`] : []),
    ].join(', ')}.`,
    `API: autocannon ${LOAD.connections} connections × ${LOAD.duration} s after a ${LOAD.warmup} s warm-up, in this process; EVF_API_CACHE_MS=0, a bearer token on every request; the standby by streaming replication from the same embedded primary.`,
    ...(r.clusterFailure ? [`Kafka 3 nodes: FAILED — ${r.clusterFailure.split('\n')[0]}`] : []),
    'One shared 2-core machine: every process competes for the same cores, so these are costs, not a cluster’s speed.',
  ]
  const body = [
    '**Produce and ETL: 1 Kafka node against 3 nodes with RF 3**',
    kafkaTable,
    '**ETL workers** (the same backlog on 1 node; tables truncated between runs)',
    workersTable,
    '**API reads: primary against hot standby**',
    apiTable,
    '**Costs** (the baseline: what docs/scaling.md plans with)',
    costsTable,
    apiCost,
    notes.map((n) => `- ${n}`).join('\n'),
  ].join('\n\n')
  process.stdout.write(`\n${body}\n`)
  record('Scaling (bench:scale)', `${body}${r.buildNote ? `\n\n(${r.buildNote.replace(/^; /, '')})` : ''}`)
  progress('recorded in docs/benchmarks.md')
}

installSignalHandlers()
try {
  await main()
} catch (error) {
  process.exitCode = 1
  progress(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  await cleanup()
}
