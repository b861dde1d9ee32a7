/**
 * `npm run bench:connect`: our ETL side by side with what a Kafka user would reach for instead,
 * Kafka Connect 4.4 (standalone) with the Debezium JDBC sink, on the same readings, broker and
 * PostgreSQL, measured by the same code:
 *  - the ETL: `evf etl run --etl-workers 1`, then 2, as bench:etl runs it, into sensor_data;
 *  - Connect: the same readings, transformed by the ETL's own function, as records in Connect's
 *    JSON envelope (schema + payload) on topics of their own, loaded by the sink into a table of
 *    sensor_data's shape, partitions and indexes: plain inserts and the PostgreSQL UNNEST insert,
 *    with 1 and 3 tasks.
 * For each: rows/s from the first transaction to the last (the rows' created_at), rows per
 * CPU-second of the loader and PostgreSQL together (/proc, the loader's whole life to its last
 * row), peak RSS, time from start to the first row. Every Connect row is checked against the
 * ETL's. BENCH_CONNECT_MESSAGES readings (default 200,000; 20,000 for a trial),
 * BENCH_CONNECT_BATCH records per batch (default 5,000, the ETL's), BENCH_CONNECT_QUIET_WAIT
 * seconds to wait for a quiet machine before each run (default 20), BENCH_CONNECT_CONFIGS the
 * Connect configurations to run (default insert-1,insert-3,unnest-1,unnest-3). Fetches the Connect jars
 * (connect/pom.xml, Maven) on first use. Appends the table to docs/benchmarks-history.md.
 * Parts: connect-runtime.ts (jars, configuration, the worker), connect-data.ts (records, table,
 * check).
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { type Config, configToEnv } from '../src/config/index.ts'
import { createPool, type Pool } from '../src/db/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { runSimulator } from '../src/simulator/index.ts'
import { checkRows, createTargetTable, produceEnvelopes } from './connect-data.ts'
import { fetchConnectJars, POLL_MS, type SinkRun, startConnect, waitForRows } from './connect-runtime.ts'
import {
  benchDir,
  childPids,
  cleanupNow,
  cpuTimeline,
  distCli,
  ensureDist,
  envInt,
  fmt,
  kb,
  loadSpan,
  onCleanup,
  peakMemory,
  progress,
  publish,
  ratio,
  reapedCpu,
  requirePid,
  runBench,
  stackServices,
  startChild,
  table,
  treesTotal,
  waitQuiet,
} from './harness/index.ts'

const N = envInt('BENCH_CONNECT_MESSAGES', 200_000)
/** Connect's batches: the ETL's by default (etlBatchSize, 5,000), ten times Debezium's default */
const BATCH = envInt('BENCH_CONNECT_BATCH', 5000)
const QUIET_WAIT = Number(process.env.BENCH_CONNECT_QUIET_WAIT || 20)
if (!(QUIET_WAIT >= 0)) throw new Error(`BENCH_CONNECT_QUIET_WAIT must be a number of seconds ≥ 0`)
const quiet = () => (QUIET_WAIT > 0 ? waitQuiet(QUIET_WAIT) : Promise.resolve())
/** Connect's configurations to run: insert or unnest, and the number of tasks. */
const CONFIGS = (process.env.BENCH_CONNECT_CONFIGS || 'insert-1,insert-3,unnest-1,unnest-3').split(',')
const TARGET = 'sensor_data_connect'
const log = createLogger('bench', 'warn')

interface Result {
  loader: string
  /** the loader in a few words, for the notes */
  short: string
  rows: number
  rate: number
  loaderCpu: number
  pgCpu: number
  peakMb: number
  /** seconds from the loader's start to its first transaction */
  firstRow: number
  /** the loader's CPU seconds by its first transaction's start: its start-up */
  startCpu: number
}

const perCpu = (r: Result): number => r.rows / (r.loaderCpu + r.pgCpu)
/** The same, the loader's start-up (its CPU by its first transaction) left out: the steady cost. */
const perCpuSteady = (r: Result): number => r.rows / (r.loaderCpu - r.startCpu + r.pgCpu)

/** What every run needs: the broker's login, the database, PostgreSQL's CPU counter. */
interface Bench {
  config: Config
  pool: Pool
  dataDir: string
  /** CPU seconds of PostgreSQL: the postmaster and its children, the exited ones included */
  pgCpu: () => number
}

async function main(): Promise<void> {
  ensureDist()
  fetchConnectJars()
  const dataDir = benchDir('bench-connect', true)
  const { services, config } = await stackServices(dataDir)
  onCleanup('Kafka and PostgreSQL', () => services.stop())
  const pool = createPool(config.databaseUrl, { max: 2, statementTimeoutMs: 0 })
  onCleanup('the pool', () => pool.end())
  const postmaster = requirePid(join(dataDir, 'postgres', 'postmaster.pid'))
  const bench: Bench = { config, pool, dataDir, pgCpu: () => treesTotal([postmaster]) }

  progress(`producing ${fmt(N)} readings…`)
  await runSimulator(
    { ...config, simCount: N, simSensorsPerStation: 25, logLevel: 'warn' },
    createLogger('simulator', 'warn'),
  )

  // 1. The ETL, as bench:etl runs it: one worker process, then one per core.
  const results: Result[] = []
  for (const workers of [1, 2]) {
    if (workers > 1) await pool.query('TRUNCATE sensor_data, dead_letters, etl_offsets')
    results.push(await runEtl(bench, workers))
  }
  // And as `npm start` runs it, continuously, as Connect runs: `etl follow`, stopped at the last row.
  results.push(await runFollow(bench))
  // Its table settled (statistics, visibility map) before the next runs, not by autovacuum in them.
  await pool.query('VACUUM ANALYZE sensor_data')

  // 2. Connect, on records made from the same readings, into a table of sensor_data's shape.
  progress('Connect: the readings as Connect records on topics of their own…')
  const { topics, records } = await produceEnvelopes(config, N, log)
  await createTargetTable(pool, TARGET)
  for (const unnest of [false, true]) {
    for (const tasks of [1, 3]) {
      const which = `${unnest ? 'unnest' : 'insert'}-${tasks}`
      if (!CONFIGS.includes(which)) continue
      const run = { name: `bench-${which}`, tasks, unnest, batch: BATCH, topics, table: TARGET }
      results.push(await runConnect(bench, run, records))
    }
  }

  report(results, records, config.etlBatchSize)
}

/** `evf etl run --etl-workers <workers>` from the first offset, into sensor_data. */
async function runEtl({ config, pool, pgCpu }: Bench, workers: number): Promise<Result> {
  await quiet()
  progress(`ETL: evf etl run --etl-workers ${workers}…`)
  const pg0 = pgCpu()
  const reaped0 = reapedCpu()
  const t0 = Date.now()
  const etl = spawn(process.execPath, [distCli, 'etl', 'run', '--etl-workers', String(workers)], {
    env: { ...process.env, ...configToEnv(config) },
    stdio: ['ignore', 'ignore', 'inherit'],
  })
  // The ETL and, with --etl-workers 2, its worker processes: the peak of any one of them.
  const peak = peakMemory(
    () => [etl.pid!, ...childPids(etl.pid!)],
    (pid) => kb(`/proc/${pid}/status`, 'VmHWM'),
    100,
  )
  const timeline = cpuTimeline(() => [etl.pid!], 100)
  // The same count as Connect's wait makes, so that PostgreSQL does the same extra work.
  const poll = setInterval(() => void pool.query('SELECT count(*) FROM sensor_data').catch(() => {}), POLL_MS)
  const code = await new Promise((resolve) => etl.on('exit', resolve))
  clearInterval(poll)
  timeline.stop()
  // Its worker processes included: each was waited for by the ETL, which we waited for.
  const loaderCpu = reapedCpu() - reaped0
  const pg = pgCpu() - pg0
  const peakMb = peak.stop()
  if (code !== 0) throw new Error(`etl run exited ${code}`)
  const names = {
    loader: `ETL: \`evf etl run --etl-workers ${workers}\``,
    short: `ETL ${workers} worker${workers > 1 ? 's' : ''}`,
  }
  return etlResult(pool, names, { t0, timeline, loaderCpu, pgCpu: pg, peakMb })
}

/** An ETL run's result, from sensor_data (every reading loaded once) and what was measured. */
async function etlResult(
  pool: Pool,
  names: { loader: string; short: string },
  m: {
    t0: number
    timeline: { at: (ms: number) => number }
    loaderCpu: number
    pgCpu: number
    peakMb: number
  },
): Promise<Result> {
  const span = await loadSpan(pool)
  if (span.rows !== N) throw new Error(`expected ${N} rows, found ${span.rows}`)
  return {
    ...names,
    startCpu: m.timeline.at(span.first),
    rows: span.rows,
    rate: span.rate,
    loaderCpu: m.loaderCpu,
    pgCpu: m.pgCpu,
    peakMb: m.peakMb,
    firstRow: (span.first - m.t0) / 1000,
  }
}

/**
 * `evf etl follow` with one worker (a supervisor and its worker process, the loader's heap flags
 * on the worker, as `npm start` runs it) from the first offset, stopped at the last row: the
 * continuous service Connect also is. Its CPU: both processes up to the last row.
 */
async function runFollow({ config, pool, pgCpu, dataDir }: Bench): Promise<Result> {
  await pool.query('TRUNCATE sensor_data, dead_letters, etl_offsets')
  await quiet()
  progress('ETL: evf etl follow (one worker process), stopped at the last row…')
  const pg0 = pgCpu()
  const t0 = Date.now()
  const follow = startChild('etl follow', process.execPath, [distCli, 'etl', 'follow'], {
    env: { ...process.env, ...configToEnv({ ...config, etlWorkers: 1 }) },
    logFile: join(dataDir, 'etl-follow.log'),
  })
  const pid = follow.child.pid
  if (pid === undefined) throw new Error('etl follow did not start')
  const peak = peakMemory(
    () => [pid, ...childPids(pid)],
    (p) => kb(`/proc/${p}/status`, 'VmHWM'),
    100,
  )
  const timeline = cpuTimeline(() => [pid], 100)
  await waitForRows(pool, 'sensor_data', N, follow)
  const loaderCpu = treesTotal([pid])
  const pg = pgCpu() - pg0
  const peakMb = peak.stop()
  timeline.stop()
  await cleanupNow(follow.stop)
  const names = { loader: 'ETL: `evf etl follow`, one worker', short: 'ETL follow' }
  return etlResult(pool, names, { t0, timeline, loaderCpu, pgCpu: pg, peakMb })
}

/** A Connect worker with the sink configured as `run`, from the start of the topics, stopped at the last row. */
async function runConnect(
  { config, pool, dataDir, pgCpu }: Bench,
  run: SinkRun,
  records: number,
): Promise<Result> {
  await pool.query(`TRUNCATE ${run.table}`)
  await quiet()
  const what = `${run.unnest ? 'UNNEST insert' : 'inserts'}, ${run.tasks} task${run.tasks > 1 ? 's' : ''}`
  progress(`Connect: Debezium JDBC sink, ${what}…`)
  const pg0 = pgCpu()
  const t0 = Date.now()
  const connect = await startConnect(join(dataDir, 'connect', run.name), config, config.databaseUrl, run)
  const peak = peakMemory(
    () => [connect.pid],
    (pid) => kb(`/proc/${pid}/status`, 'VmHWM'),
    100,
  )
  const timeline = cpuTimeline(() => [connect.pid], 100)
  await waitForRows(pool, run.table, records, connect)
  // Its whole life up to the last row: the JVM's start-up is in it, as the ETL's start is.
  const loaderCpu = treesTotal([connect.pid])
  const pg = pgCpu() - pg0
  const peakMb = peak.stop()
  timeline.stop()
  await cleanupNow(connect.stop)
  const span = await loadSpan(pool, run.table)
  await checkRows(pool, run.table, records)
  return {
    loader: `Kafka Connect + Debezium JDBC sink: ${what}`,
    short: `Connect ${what}`,
    startCpu: timeline.at(span.first),
    rows: span.rows,
    rate: span.rate,
    loaderCpu,
    pgCpu: pg,
    peakMb,
    firstRow: (span.first - t0) / 1000,
  }
}

function report(results: Result[], records: number, etlBatch: number): void {
  const etl = results.filter((r) => r.loader.startsWith('ETL'))
  const connect = results.filter((r) => !r.loader.startsWith('ETL'))
  const best = (rs: Result[], f: (r: Result) => number) => Math.max(...rs.map(f))
  const rate = ratio(
    best(etl, (r) => r.rate),
    best(connect, (r) => r.rate),
  )
  const cpu = ratio(best(etl, perCpu), best(connect, perCpu))
  const steady = ratio(best(etl, perCpuSteady), best(connect, perCpuSteady))
  const body = table(
    [
      'loader',
      'rows/s',
      'rows per CPU-s (loader + PostgreSQL)',
      'loader CPU s',
      'PostgreSQL CPU s',
      'peak RSS',
      'time to first row',
    ],
    [
      ...results.map((r) => [
        r.loader,
        fmt(r.rate),
        fmt(perCpu(r)),
        r.loaderCpu.toFixed(2),
        r.pgCpu.toFixed(2),
        `${fmt(r.peakMb)} MB`,
        `${r.firstRow.toFixed(1)} s`,
      ]),
      ['ETL best ÷ Connect best', rate, cpu, '', '', '', ''],
      ["the same, the loaders' start-up left out", '', steady, '', '', '', ''],
    ],
  )
  const notes =
    `${fmt(N)} readings, ${fmt(records)} Connect records, every Connect row checked against the ETL's. ` +
    `Batches: the ETL's ${fmt(etlBatch)}, Connect's ${fmt(BATCH)} (Debezium's batch.size and the worker consumer's max.poll.records). ` +
    'CPU: each loader from its start to its last row (JVM start-up included), PostgreSQL over the same time; ' +
    'of which by its first transaction (start-up, sampled every 100 ms): ' +
    `${results.map((r) => `${r.short} ${r.startCpu.toFixed(1)} s`).join(', ')}. ` +
    'The ETL also validates and transforms each reading; Connect loads rows transformed beforehand.'
  publish(`Against Kafka Connect (bench:connect), ${fmt(N)} readings`, `${body}\n\n${notes}`)
}

await runBench(main)
