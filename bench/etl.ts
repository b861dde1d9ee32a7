/**
 * `npm run bench:etl`: the ETL's sustained load rate against two baselines measured in the same
 * run, on the same data:
 *  - the limit: the same already-transformed rows loaded with PostgreSQL COPY into an identical
 *    table, no Kafka in the path;
 *  - the reference: one INSERT per message, each committed, as the reference DAG loads.
 * BENCH_ETL_MESSAGES (default 1,000,000; 20,000 for a short trial, with
 * BENCH_ETL_BASELINE_SAMPLE=2000) readings are produced first. Prints the rates, the ratios and
 * the ETL's peak RSS, and appends them to docs/benchmarks-history.md.
 */
import { spawn } from 'node:child_process'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { from as copyFrom } from 'pg-copy-streams'
import { configToEnv } from '../src/config/index.ts'
import { createPool } from '../src/db/index.ts'
import { transformRecord, validationPolicy } from '../src/etl/index.ts'
import { createConsumer } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { runSimulator } from '../src/simulator/index.ts'
import { allTopics, plant } from '../test/plant.ts'
import {
  benchDir,
  childPids,
  distCli,
  ensureDist,
  fmt,
  kb,
  loadSpan,
  peakMemory,
  progress,
  publish,
  ratio,
  stackServices,
  table,
} from './harness/index.ts'

const N = Number(process.env.BENCH_ETL_MESSAGES ?? 1_000_000)
const SAMPLE = Number(process.env.BENCH_ETL_BASELINE_SAMPLE ?? 20_000)
ensureDist()
const dataDir = benchDir('bench-etl', true)
const { services, config } = await stackServices(dataDir)
const pool = createPool(config.databaseUrl, { max: 2, statementTimeoutMs: 0 })

interface RunSummaryLike {
  loaded: number
  rejected: number
  batches: number
  durationMs: number
}

async function runEtl(workers: number) {
  progress(`ETL: evf etl run --etl-workers ${workers}…`)
  // BENCH_ETL_NODE_ARGS="--cpu-prof --cpu-prof-dir=/tmp/prof" profiles the ETL process.
  const nodeArgs = (process.env.BENCH_ETL_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const etl = spawn(
    process.execPath,
    [...nodeArgs, distCli, 'etl', 'run', '--etl-workers', String(workers)],
    {
      env: { ...process.env, ...configToEnv(config) },
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
  // The ETL and, with --etl-workers, its worker processes: the peak of any one of them.
  const peak = peakMemory(
    () => [etl.pid!, ...childPids(etl.pid!)],
    (pid) => kb(`/proc/${pid}/status`, 'VmHWM'),
    100,
  )
  let out = ''
  etl.stdout.on('data', (d) => (out += d))
  const reporter = setInterval(async () => {
    const { rows } = await pool.query('SELECT count(*)::int AS n FROM sensor_data')
    progress(`ETL: ${rows[0].n.toLocaleString('en-US')} / ${N.toLocaleString('en-US')} rows`)
  }, 3000)
  const code = await new Promise((resolve) => etl.on('exit', resolve))
  const peakMb = peak.stop()
  clearInterval(reporter)
  if (code !== 0) throw new Error(`etl run exited ${code}`)
  const summary = JSON.parse(out) as RunSummaryLike
  const span = await loadSpan(pool)
  if (span.rows !== N) throw new Error(`expected ${N} rows, found ${span.rows}`)
  return { workers, rate: span.rate, peakMb, summary }
}

try {
  progress(`producing ${N.toLocaleString('en-US')} readings…`)
  await runSimulator(
    { ...config, simCount: N, simSensorsPerStation: 25, logLevel: 'info' },
    createLogger('simulator', 'info'),
  )

  // 1. The ETL, as a user runs it, in processes of its own so their RSS is their own: one worker
  // process, then one per core (the topics dealt out between them).
  const runs: { workers: number; rate: number; peakMb: number; summary: RunSummaryLike }[] = []
  for (const workers of [1, 2]) {
    if (workers > 1) await pool.query('TRUNCATE sensor_data, dead_letters, etl_offsets')
    runs.push(await runEtl(workers))
  }
  const loaded = N
  const etlRate = Math.max(...runs.map((r) => r.rate))

  // 2. The limit: COPY of the same transformed rows into an identical table.
  progress('COPY: exporting the transformed rows…')
  const exported = await pool.query<{ line: string }>(
    `SELECT concat_ws(E'\\t', station, replace(replace(data::text, '\\', '\\\\'), E'\\t', '\\t'), reading_time, source_topic,
       source_partition, source_offset) AS line FROM sensor_data`,
  )
  const payload = Buffer.from(`${exported.rows.map((r) => r.line).join('\n')}\n`)
  exported.rows.length = 0
  // Partitioned like sensor_data, with the same daily partitions and indexes: LIKE alone would
  // give a plain table, which skips the routing and per-partition indexes the ETL pays for.
  await pool.query(
    'CREATE TABLE sensor_data_copy (LIKE sensor_data INCLUDING ALL) PARTITION BY RANGE (reading_time)',
  )
  const { rows: parts } = await pool.query<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
     JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sensor_data'::regclass`,
  )
  for (const p of parts)
    await pool.query(`CREATE TABLE copy_${p.name} PARTITION OF sensor_data_copy ${p.bound}`)
  progress(`COPY: loading ${loaded.toLocaleString('en-US')} rows…`)
  const client = await pool.connect()
  const t0 = performance.now()
  try {
    await client.query('BEGIN')
    await pipeline(
      Readable.from([payload]),
      client.query(
        copyFrom(
          'COPY sensor_data_copy (station, data, reading_time, source_topic, source_partition, source_offset) FROM STDIN',
        ),
      ),
    )
    await client.query('COMMIT')
  } finally {
    client.release()
  }
  const copyRate = loaded / ((performance.now() - t0) / 1000)

  // 3. The reference: consume, transform, one INSERT per message, each committed.
  progress(`baseline: ${SAMPLE.toLocaleString('en-US')} messages, one INSERT and COMMIT each…`)
  await pool.query('CREATE TABLE sensor_data_baseline (LIKE sensor_data INCLUDING ALL)')
  const consumer = createConsumer(config, 'bench-baseline', `bench-baseline-${Date.now()}`)
  const stream = await consumer.consume({
    topics: allTopics(config.topicPrefix),
    mode: 'earliest',
    autocommit: false,
  })
  const policy = validationPolicy(config, plant, Date.now())
  let n = 0
  const t1 = performance.now()
  for await (const m of stream) {
    const r = transformRecord(m, policy, new Date().toISOString())
    if (r.ok) {
      await pool.query(
        `INSERT INTO sensor_data_baseline (station, data, reading_time, source_topic, source_partition, source_offset)
         VALUES ($1, $2, to_timestamp($3), $4, $5, $6)`,
        [r.row.station, r.row.data, r.row.timestamp, r.row.topic, r.row.partition, r.row.offset.toString()],
      )
    }
    if (++n >= SAMPLE) break
  }
  const baselineRate = n / ((performance.now() - t1) / 1000)
  await stream.close()
  await consumer.close()

  const result = table(
    ['what', 'rows/s', 'ETL (best) ÷ this', 'peak RSS per process'],
    [
      ...runs.map((r) => [
        `ETL: \`evf etl run --etl-workers ${r.workers}\`, batches of 5000, first row → last commit`,
        fmt(r.rate),
        ratio(etlRate, r.rate),
        `${r.peakMb.toFixed(0)} MB`,
      ]),
      ['limit: COPY of the same transformed rows, no Kafka', fmt(copyRate), ratio(etlRate, copyRate), ''],
      [
        `reference: one INSERT + COMMIT per message (${fmt(SAMPLE)} sample)`,
        fmt(baselineRate),
        ratio(etlRate, baselineRate),
        '',
      ],
    ],
  )
  const extra = runs
    .map(
      (r) =>
        `--etl-workers ${r.workers}: loaded ${fmt(r.summary.loaded)}, rejected ${fmt(r.summary.rejected)}, ${r.summary.batches} batches, ${(r.summary.durationMs / 1000).toFixed(1)} s including start-up.`,
    )
    .join(' ')
  const one = runs.find((r) => r.workers === 1)!
  const perWorker = `One worker ÷ the COPY limit: ${ratio(one.rate, copyRate)} (target: at least 0.85).`
  publish(`ETL load rate, ${fmt(N)} readings`, `${result}\n\n${perWorker} ${extra}`)
} finally {
  await pool.end()
  await services.stop()
}
