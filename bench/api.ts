/**
 * `npm run bench:api`: our API against the reference FastAPI app, on the same database.
 *
 *  1. starts its own PostgreSQL (a fresh cluster under .cache/bench-api/db) and migrates it;
 *  2. generates `--rows` readings (default 10,000,000; or BENCH_ROWS) in SQL over the last 7
 *     days, shaped as the ETL writes them (bench/api-data.ts): chunks generated side by side into
 *     staging tables and moved into sensor_data in order, secondary indexes built after the load;
 *     then rollups (when the schema has them), VACUUM and ANALYZE, as a long-running database
 *     would be;
 *  3. starts our API as production runs it (`node dist/cli.js api`, built first if stale);
 *  4. installs the FastAPI baseline (bench/baselines/fastapi) into .cache/bench-api/venv;
 *  5. drives each endpoint with autocannon (`--connections`, `--duration`), after a warm-up,
 *     sampling the server's RSS and the CPU of the server, PostgreSQL, the load generator and
 *     everything else on the machine (waiting first for the machine to be quiet);
 *  6. prints a table, the ours ÷ FastAPI ratio and the issue's targets (PASS/MISS — it never
 *     asserts), and appends them to docs/benchmarks.md;
 *  7. stops everything it started, also on error and Ctrl-C.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import autocannon, { type Instance, type Result } from 'autocannon'
import { loadConfig } from '../src/config/index.ts'
import { freePort, startEmbeddedPostgres } from '../src/db/embedded.ts'
import { createPool, migrate, type Pool } from '../src/db/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { alive, stopChild, stopPid } from '../src/shared/process.ts'
import { insertChunks } from './api-data.ts'
import { childPids, progress, record, table } from './lib.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: process.env.BENCH_ROWS ?? '10000000' },
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '1000000' },
    loaders: { type: 'string', default: '2' },
    // a trial run: print, do not append to docs/benchmarks.md
    'no-record': { type: 'boolean', default: false },
    // measure dist/ as it is, even when src/ is newer (e.g. while src/ does not compile)
    'no-build': { type: 'boolean', default: false },
    // before each run, wait up to this many seconds for the rest of the machine to be idle
    'quiet-wait': { type: 'string', default: '120' },
  },
})
const positive = (name: string, v: string | undefined): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`)
  return n
}
const ROWS = positive('rows', args.rows)
const DURATION = positive('duration', args.duration)
const CONNECTIONS = positive('connections', args.connections)
const WARMUP = Number(args.warmup) >= 0 ? Number(args.warmup) : 3
const CHUNK = positive('chunk', args.chunk)
const LOADERS = positive('loaders', args.loaders)
const QUIET_WAIT = Number(args['quiet-wait']) >= 0 ? Number(args['quiet-wait']) : 120
const DAY_MS = 86_400_000
const SPAN_MS = 7 * DAY_MS

const cacheDir = join(repoRoot, '.cache', 'bench-api')
const dataDir = join(cacheDir, 'db')
const logDir = join(cacheDir, 'logs')
const venv = join(cacheDir, 'venv')
const baselineDir = join(repoRoot, 'bench', 'baselines', 'fastapi')
const fmt = (x: number, digits = 0) =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })
const seconds = (t0: number) => `${((performance.now() - t0) / 1000).toFixed(1)} s`

// ── cleanup: everything started is stopped, in reverse order, on success, error or a signal ──
const cleanups: { name: string; run: () => Promise<void> }[] = []
let cleaning: Promise<void> | undefined
let interrupted = false
let running: Instance | undefined
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      progress(`stopping ${c.name}…`)
      await c.run().catch((error: unknown) => progress(`stopping ${c.name} failed: ${String(error)}`))
    }
  })()
  return cleaning
}
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    interrupted = true
    progress(`${sig}: stopping everything…`)
    running?.stop()
    void cleanup().finally(() => process.exit(130))
  })
}
const checkInterrupted = () => {
  if (interrupted) throw new Error('interrupted')
}

// ── /proc: RSS and CPU ──
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100
const children = childPids
/** user + system CPU seconds of one process (0 when gone) */
const cpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return 0
  }
}
const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}
/** CPU seconds the whole machine was busy (all cores, from /proc/stat) */
const machineBusy = (): number => {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const [user, nice, system, , , irq, softirq, steal] = f.map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLK_TCK
}
/** CPU seconds per pid of a process tree, to diff two snapshots (a process born between counts from 0). */
const treeCpu = (root: number): Map<number, number> =>
  new Map([root, ...children(root)].map((pid) => [pid, cpuSeconds(pid)]))
const cpuDelta = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((sum, [pid, t]) => sum + t - (before.get(pid) ?? 0), 0)

// ── child processes ──
function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

function startChild(
  name: string,
  cmd: string,
  argv: string[],
  opts: { cwd?: string; env: NodeJS.ProcessEnv },
) {
  mkdirSync(logDir, { recursive: true })
  const logFile = join(logDir, `${name}.log`)
  const out = openSync(logFile, 'w')
  // A process group of its own: a Ctrl-C at the terminal reaches only us, and we stop it.
  const child = spawn(cmd, argv, {
    cwd: opts.cwd,
    env: opts.env,
    detached: true,
    stdio: ['ignore', out, out],
  })
  cleanups.push({ name, run: () => stopChild(child, 10_000, 'SIGTERM', true) })
  return { child, logFile }
}

async function waitHealthy(name: string, url: string, child: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    checkInterrupted()
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(
        `${name} exited (${child.exitCode ?? child.signalCode}) before answering; ${logFile}:\n${logTail(logFile)}`,
      )
    }
    try {
      const res = await fetch(url)
      if (res.ok) return
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline)
      throw new Error(`${name} did not answer ${url} within 60 s:\n${logTail(logFile)}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}

/** Newest modification time of the .ts files under a directory. */
function newestTs(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts'))
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}

// ── 1–2. PostgreSQL and the data ──
const pidFile = join(dataDir, 'postgres', 'postmaster.pid')
async function stopByPidFile(why?: string): Promise<void> {
  if (!existsSync(pidFile)) return
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  if (!pid || !alive(pid)) return
  if (why) progress(`stopping PostgreSQL ${pid} ${why}…`)
  await stopPid(pid, 'SIGINT', 10_000)
}

async function startDatabase() {
  // A cluster left running by a killed earlier run still holds the directory: stop it first.
  await stopByPidFile('left running by an earlier run')
  rmSync(dataDir, { recursive: true, force: true })
  const t0 = performance.now()
  progress(`PostgreSQL: initialising a fresh cluster in ${dataDir}…`)
  // Until the server is up, a signal stops it through its pid file.
  const early = { name: 'PostgreSQL', run: () => stopByPidFile() }
  cleanups.push(early)
  const db = await startEmbeddedPostgres({ dataDir, port: 0, log: createLogger('bench', 'warn') })
  early.run = () => db.stop()
  const postmaster = Number(readFileSync(pidFile, 'utf8').split('\n')[0])
  progress(`PostgreSQL: up on port ${db.port} (pid ${postmaster}) in ${seconds(t0)}`)
  return { ...db, postmaster }
}

async function functionsPresent(pool: Pool, names: string[]): Promise<Set<string>> {
  const { rows } = await pool.query<{ proname: string }>(
    `SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = current_schema() AND p.proname = ANY($1)`,
    [names],
  )
  return new Set(rows.map((r) => r.proname))
}

/** The table's indexes other than its primary key: how to drop each and build it again. */
async function dropSecondaryIndexes(pool: Pool): Promise<{ name: string; create: string }[]> {
  const { rows } = await pool.query<{
    name: string
    def: string
    conname: string | null
    condef: string | null
  }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def,
            c.conname, pg_get_constraintdef(c.oid) AS condef
     FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
     WHERE i.indrelid = 'sensor_data'::regclass AND NOT i.indisprimary
     ORDER BY 1`,
  )
  const out: { name: string; create: string }[] = []
  for (const r of rows) {
    if (r.conname && r.condef) {
      await pool.query(`ALTER TABLE sensor_data DROP CONSTRAINT ${quoteIdent(r.conname)}`)
      out.push({
        name: r.conname,
        create: `ALTER TABLE sensor_data ADD CONSTRAINT ${quoteIdent(r.conname)} ${r.condef}`,
      })
    } else {
      await pool.query(`DROP INDEX ${r.name}`)
      // on a partitioned table the definition reads ON ONLY (the parent alone); built on all
      out.push({ name: r.name, create: r.def.replace(' ON ONLY ', ' ON ') })
    }
  }
  progress(`dropped ${out.length} secondary indexes for the load: ${out.map((o) => o.name).join(', ')}`)
  return out
}
const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`

/** Runs the tasks, `n` at a time. */
async function inParallel(tasks: (() => Promise<void>)[], n: number): Promise<void> {
  let next = 0
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      checkInterrupted()
      await tasks[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker))
}

interface LoadSummary {
  schemaNote: string
  sizeText: string
  loadSeconds: number
  prepareSeconds: number
}

const COLUMNS = 'station, data, reading_time, created_at, source_topic, source_partition, source_offset'

async function loadData(pool: Pool): Promise<LoadSummary> {
  const applied = await migrate(pool)
  progress(`migrations applied: ${applied.join(', ')}`)
  // A bulk load on a throw-away cluster: fewer checkpoints. Reloaded, no restart needed.
  await pool.query(`ALTER SYSTEM SET max_wal_size = '8GB'`)
  await pool.query('SELECT pg_reload_conf()')
  const have = await functionsPresent(pool, ['sensor_data_ensure_partitions', 'rollups_rebuild'])
  const endMs = Date.now()
  const from = new Date(endMs - SPAN_MS - DAY_MS)
  const to = new Date(endMs + DAY_MS)
  if (have.has('sensor_data_ensure_partitions')) {
    progress('creating the partitions for the 7 days…')
    await pool.query('SELECT sensor_data_ensure_partitions($1, $2)', [from, to])
  }
  // Bulk-load practice: the secondary indexes and unique constraints are dropped for the load
  // and built again after it from their own definitions (a sorted build instead of 10M
  // insertions into each), so the schema is the one the migrations declare.
  const secondary = await dropSecondaryIndexes(pool)
  const chunks = insertChunks({ total: ROWS, endMs, spanMs: SPAN_MS }, CHUNK)

  // A pipeline: `--loaders` sessions generate chunks (the costly part: random values, JSON) into
  // unlogged staging tables side by side, and one session moves them into sensor_data in order,
  // so ids grow with reading time as the ETL's do.
  progress(
    `generating ${fmt(ROWS)} readings in SQL: ${chunks.length} chunks of ≤ ${fmt(CHUNK)}, ` +
      `${LOADERS} generating at a time, one session inserting in order…`,
  )
  const t0 = performance.now()
  const stage = (i: number) => `bench_stage_${i}`
  const staged = chunks.map(() => {
    let resolve!: () => void
    let reject!: (e: unknown) => void
    const promise = new Promise<void>((res, rej) => {
      resolve = res
      reject = rej
    })
    promise.catch(() => undefined) // observed by the inserter
    return { promise, resolve, reject }
  })
  let inserted = 0 // chunks moved into sensor_data
  let wake: (() => void) | undefined
  let next = 0
  const generator = async () => {
    for (let i = next++; i < chunks.length; i = next++) {
      // at most LOADERS + 1 chunks staged ahead of the inserter (disk)
      while (i - inserted > LOADERS + 1) await new Promise<void>((r) => (wake = r))
      checkInterrupted()
      try {
        await pool.query(`CREATE UNLOGGED TABLE ${stage(i)} (${COLUMNS}) AS ${chunks[i]!.select}`)
        staged[i]!.resolve()
      } catch (error) {
        staged[i]!.reject(error)
        throw error
      }
    }
  }
  let done = 0
  const inserter = async () => {
    const client = await pool.connect()
    try {
      // a seq scan of a fresh table returns its rows in the order they were written
      await client.query('SET synchronize_seqscans = off')
      for (let i = 0; i < chunks.length; i++) {
        await staged[i]!.promise
        checkInterrupted()
        await client.query(`INSERT INTO sensor_data (${COLUMNS}) SELECT ${COLUMNS} FROM ${stage(i)}`)
        await client.query(`DROP TABLE ${stage(i)}`)
        inserted = i + 1
        wake?.()
        done += chunks[i]!.rows
        const rate = done / ((performance.now() - t0) / 1000)
        progress(`  ${fmt(done)} / ${fmt(ROWS)} rows (${fmt(rate)} rows/s, ${seconds(t0)})`)
      }
    } finally {
      client.release()
    }
  }
  await Promise.all([inserter(), ...Array.from({ length: Math.min(LOADERS, chunks.length) }, generator)])
  const loadSeconds = (performance.now() - t0) / 1000

  const t1 = performance.now()
  progress(`building ${secondary.length} indexes, 2 at a time…`)
  await inParallel(
    secondary.map((index) => async () => {
      const t = performance.now()
      await pool.query(index.create)
      progress(`  built ${index.name} in ${seconds(t)}`)
    }),
    2,
  )
  if (have.has('rollups_rebuild')) {
    const t = performance.now()
    // whole-hour slices, so that the function's hour rounding never makes two of them overlap
    const HOUR_MS = 3_600_000
    const start = Math.floor(from.getTime() / HOUR_MS) * HOUR_MS
    const days = Math.ceil((to.getTime() - start) / DAY_MS)
    progress(`rebuilding the rollups, ${days} days, 2 at a time…`)
    await inParallel(
      Array.from({ length: days }, (_, d) => async () => {
        const lo = new Date(start + d * DAY_MS)
        const hi = new Date(lo.getTime() + DAY_MS)
        await pool.query('SELECT rollups_rebuild($1, $2)', [lo, hi])
      }),
      2,
    )
    progress(`  rollups rebuilt in ${seconds(t)}`)
  }
  // What autovacuum would do on its own soon after a load this size — done now, so it does not
  // run in the middle of a measurement: visibility map, hint bits, planner statistics. The
  // partitions two at a time, then the rest (and the partitioned parent's statistics).
  const t2 = performance.now()
  progress('VACUUM (ANALYZE)…')
  const { rows: leaves } = await pool.query<{ name: string }>(
    `SELECT relid::regclass::text AS name FROM pg_partition_tree('sensor_data') WHERE isleaf`,
  )
  await inParallel(
    leaves.map((leaf) => async () => {
      await pool.query(`VACUUM (ANALYZE) ${leaf.name}`)
    }),
    2,
  )
  await pool.query('VACUUM (ANALYZE)')
  progress(`  VACUUM (ANALYZE) done in ${seconds(t2)}`)
  const prepareSeconds = (performance.now() - t1) / 1000

  const { rows } = await pool.query<{ n: number; size: string; parts: number }>(
    `SELECT (SELECT count(*) FROM sensor_data)::bigint AS n,
            pg_size_pretty(sum(pg_total_relation_size(relid))) AS size,
            count(*) FILTER (WHERE isleaf)::int AS parts
     FROM pg_partition_tree('sensor_data')`,
  )
  const { n, size, parts } = rows[0]!
  if (n !== ROWS) throw new Error(`expected ${ROWS} rows in sensor_data, found ${n}`)
  const schemaNote =
    `${parts > 1 ? `sensor_data partitioned (${parts} daily partitions)` : 'sensor_data unpartitioned'}; ` +
    `rollups ${have.has('rollups_rebuild') ? 'rebuilt' : 'not in this schema'}`
  progress(`${fmt(n)} rows, ${size} with indexes; ${schemaNote}`)
  return { schemaNote, sizeText: size, loadSeconds, prepareSeconds }
}

// ── 3. our API ──
let distNote = ''
async function startOurApi(databaseUrl: string, extraEnv: Record<string, string> = {}) {
  const distCli = join(repoRoot, 'dist', 'cli.js')
  const stale = !existsSync(distCli) || newestTs(join(repoRoot, 'src')) > statSync(distCli).mtimeMs
  if (stale && args['no-build']) {
    if (!existsSync(distCli)) throw new Error('--no-build, but there is no dist/cli.js')
    progress('WARNING: dist/ is older than src/ and --no-build was given: measuring the existing dist/')
    distNote = '; dist/ older than src/ (--no-build)'
  } else if (stale) {
    const t0 = performance.now()
    progress('dist/ is older than src/: building (tsc -p tsconfig.build.json)…')
    try {
      execFileSync(
        process.execPath,
        [join(repoRoot, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json'],
        {
          cwd: repoRoot,
          stdio: ['ignore', 2, 2],
        },
      )
    } catch {
      throw new Error(
        'src/ does not compile (above): fix it, or run with --no-build to measure the existing dist/',
      )
    }
    progress(`built in ${seconds(t0)}`)
  }
  const port = await freePort()
  // As `stack up` starts it: with the V8 heap limit of its settings.
  const heap = `--max-old-space-size=${loadConfig({}, {}).apiHeapMb}`
  const { child, logFile } = startChild('api', process.execPath, [heap, distCli, 'api'], {
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      EVF_API_HOST: '127.0.0.1',
      EVF_API_PORT: String(port),
      EVF_LOG_LEVEL: 'warn',
      // The limiter stays in the path (its cost is part of production), but one load generator
      // at one address is not a crowd of clients: a limit it never reaches.
      EVF_API_RATE_LIMIT: '1000000000',
      // exits if we are killed without cleaning up
      EVF_SUPERVISED: '1',
      ...extraEnv,
    },
  })
  const base = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  await waitHealthy('our API', `${base}/health`, child, logFile)
  progress(`our API (node dist/cli.js api, pid ${child.pid}) answers /health after ${seconds(t0)}`)
  return { base, pid: child.pid! }
}

// ── 4. the FastAPI baseline ──
function installBaseline(): void {
  const lock = readFileSync(join(baselineDir, 'requirements.txt'))
  const python = execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim()
  const want = createHash('sha256').update(lock).update(python).digest('hex')
  const stamp = join(venv, '.bench-stamp')
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) {
    progress(`FastAPI baseline: venv up to date (${venv})`)
    return
  }
  const t0 = performance.now()
  progress(`FastAPI baseline: installing bench/baselines/fastapi/requirements.txt into ${venv} (${python})…`)
  rmSync(venv, { recursive: true, force: true })
  execFileSync('python3', ['-m', 'venv', venv], { stdio: ['ignore', 2, 2] })
  execFileSync(
    join(venv, 'bin', 'pip'),
    ['install', '--disable-pip-version-check', '--no-input', '-r', join(baselineDir, 'requirements.txt')],
    { stdio: ['ignore', 2, 2] },
  )
  writeFileSync(stamp, want)
  progress(`FastAPI baseline installed in ${seconds(t0)}`)
}

async function startBaseline(databaseUrl: string) {
  const port = await freePort()
  const { child, logFile } = startChild(
    'fastapi',
    join(venv, 'bin', 'uvicorn'),
    [
      'app:app',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
      '--no-access-log',
      '--log-level',
      'warning',
    ],
    { cwd: baselineDir, env: { ...process.env, DATABASE_URL: databaseUrl } },
  )
  const base = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  await waitHealthy('FastAPI baseline', `${base}/health`, child, logFile)
  progress(`FastAPI baseline (uvicorn, 1 worker, pid ${child.pid}) answers /health after ${seconds(t0)}`)
  return { base, pid: child.pid!, stop: () => stopChild(child, 10_000, 'SIGTERM', true) }
}

// ── 5. load ──
interface Measurement {
  system: 'ours' | 'ours, no cache' | 'FastAPI'
  label: string
  path: string
  result?: Result
  failure?: string
  peakRssMb: number
  cpu: { server: number; postgres: number; generator: number; other: number }
}

async function measure(
  system: Measurement['system'],
  label: string,
  base: string,
  path: string,
  serverPid: number,
  postmaster: number,
): Promise<Measurement> {
  checkInterrupted()
  const url = `${base}${path}`
  const m: Measurement = {
    system,
    label,
    path,
    peakRssMb: 0,
    cpu: { server: 0, postgres: 0, generator: 0, other: 0 },
  }
  const res = await fetch(url)
  const body = await res.text()
  if (res.status !== 200 || body.length === 0 || body === '[]' || body === '{}') {
    m.failure = `answered ${res.status} with ${body.length ? body.slice(0, 200) : 'an empty body'}`
    progress(`${system} ${label}: ${m.failure} — not loaded`)
    return m
  }
  await waitQuiet()
  if (WARMUP > 0) {
    progress(`${system} ${label}: warm-up ${WARMUP} s…`)
    running = autocannon({ url, connections: CONNECTIONS, duration: WARMUP })
    await running
  }
  checkInterrupted()
  progress(`${system} ${label}: ${CONNECTIONS} connections × ${DURATION} s…`)
  let peakKb = rssKb(serverPid)
  const sampler = setInterval(() => {
    try {
      peakKb = Math.max(peakKb, rssKb(serverPid))
    } catch {
      // the server exited; the run's errors will say so
    }
  }, 500)
  const before = {
    server: treeCpu(serverPid),
    pg: treeCpu(postmaster),
    gen: process.cpuUsage(),
    busy: machineBusy(),
  }
  const t0 = performance.now()
  running = autocannon({ url, connections: CONNECTIONS, duration: DURATION })
  const result = await running
  running = undefined
  const elapsed = (performance.now() - t0) / 1000
  clearInterval(sampler)
  const gen = process.cpuUsage(before.gen)
  m.result = result
  m.peakRssMb = peakKb / 1024
  m.cpu = {
    server: cpuDelta(before.server, treeCpu(serverPid)) / elapsed,
    postgres: cpuDelta(before.pg, treeCpu(postmaster)) / elapsed,
    generator: (gen.user + gen.system) / 1e6 / elapsed,
    other: 0,
  }
  // whatever else ran on the machine meanwhile (another build or test run skews the figures)
  m.cpu.other = Math.max(
    0,
    (machineBusy() - before.busy) / elapsed - m.cpu.server - m.cpu.postgres - m.cpu.generator,
  )
  progress(
    `  ${fmt(result.requests.average)} req/s, p50 ${result.latency.p50} ms, p99 ${result.latency.p99} ms, ` +
      `non-2xx ${result.non2xx}, errors ${result.errors}, timeouts ${result.timeouts}, RSS peak ${m.peakRssMb.toFixed(0)} MB, ` +
      `CPU server ${m.cpu.server.toFixed(2)} PostgreSQL ${m.cpu.postgres.toFixed(2)} autocannon ${m.cpu.generator.toFixed(2)} other ${m.cpu.other.toFixed(2)}`,
  )
  return m
}

/**
 * The machine is shared (a build, a test run): before a run, with our servers idle, wait up to
 * --quiet-wait seconds until the rest of the machine uses under a quarter of a core.
 */
async function waitQuiet(): Promise<void> {
  const deadline = Date.now() + QUIET_WAIT * 1000
  let told = false
  for (;;) {
    const b0 = machineBusy()
    await new Promise((r) => setTimeout(r, 1000))
    const busy = machineBusy() - b0
    if (busy < 0.25) {
      if (told) progress('  the machine is quiet')
      return
    }
    if (Date.now() > deadline) {
      progress(`  the machine is still busy (${busy.toFixed(2)} cores used by others): measuring anyway`)
      return
    }
    if (!told)
      progress(`  other processes use ${busy.toFixed(2)} cores: waiting up to ${QUIET_WAIT} s for quiet…`)
    told = true
    checkInterrupted()
  }
}

const invalid = (m: Measurement) =>
  m.failure !== undefined || !m.result || m.result.non2xx > 0 || m.result.errors > 0 || m.result.timeouts > 0

// ── 6. report ──
function report(ms: Measurement[], meta: LoadSummary) {
  const rows = ms.map((m) => {
    const r = m.result
    if (!r) return [m.system, `\`${m.label}\``, m.failure ?? 'not run', '', '', '', '', '']
    const errs = `${r.non2xx} / ${r.errors + r.timeouts}`
    return [
      m.system,
      `\`${m.label}\``,
      `${fmt(r.requests.average)}${invalid(m) ? ' (invalid: errors)' : ''}`,
      fmt(r.latency.p50, 0),
      fmt(r.latency.p99, 0),
      errs,
      `${m.peakRssMb.toFixed(0)} MB`,
      `${m.cpu.server.toFixed(2)} · ${m.cpu.postgres.toFixed(2)} · ${m.cpu.generator.toFixed(2)} · ${m.cpu.other.toFixed(2)}`,
    ]
  })
  const out = table(
    [
      'server',
      'endpoint',
      'req/s',
      'p50 ms',
      'p99 ms',
      'non-2xx / errors',
      'server RSS peak',
      'CPU cores: server · PostgreSQL · autocannon · other',
    ],
    rows,
  )
  const ours = ms.find((m) => m.system === 'ours' && m.label === '/sensor-data?limit=100')
  const theirs = ms.find((m) => m.system === 'FastAPI')
  const lines: string[] = []
  const check = (ok: boolean | undefined, what: string) =>
    lines.push(`- ${ok === undefined ? 'INVALID' : ok ? 'PASS' : 'MISS'}: ${what}`)
  const valid = (m: Measurement | undefined): m is Measurement & { result: Result } =>
    m !== undefined && !invalid(m)
  let ratioText = 'ratio not available (a run failed or had errors)'
  const bare = ms.find((m) => m.system === 'ours, no cache' && m.label === '/sensor-data?limit=100')
  if (valid(ours) && valid(theirs)) {
    const ratio = ours.result.requests.average / theirs.result.requests.average
    ratioText = `\`/sensor-data?limit=100\` ours ÷ FastAPI: **${ratio.toFixed(2)}×** req/s (p99 ${ours.result.latency.p99} ms vs ${theirs.result.latency.p99} ms)`
    if (valid(bare)) {
      ratioText += `; with our cache off: **${(bare.result.requests.average / theirs.result.requests.average).toFixed(2)}×** (p99 ${bare.result.latency.p99} ms)`
    }
    check(ratio >= 2, `/sensor-data?limit=100 at least 2× FastAPI's req/s: ${ratio.toFixed(2)}×`)
  } else check(undefined, '/sensor-data?limit=100 at least 2× FastAPI: a run failed or had errors')
  for (const m of ms.filter((x) => x.system === 'ours')) {
    const bound = m.label.startsWith('/sensor-data') ? 50 : m.label.startsWith('/stats/') ? 100 : undefined
    if (bound === undefined) continue
    check(
      valid(m) ? m.result.latency.p99 < bound : undefined,
      `${m.label} p99 under ${bound} ms: ${m.result ? `${m.result.latency.p99} ms` : (m.failure ?? 'not run')}`,
    )
  }
  const oursRuns = ms.filter((m) => m.system.startsWith('ours') && m.result)
  const peak = Math.max(0, ...oursRuns.map((m) => m.peakRssMb))
  check(oursRuns.length ? peak < 200 : undefined, `our API's RSS under 200 MB: peak ${peak.toFixed(0)} MB`)
  const head =
    `${fmt(ROWS)} readings (${meta.sizeText} with indexes; ${meta.schemaNote}${distNote}; generated in SQL in ${meta.loadSeconds.toFixed(0)} s, then ${meta.prepareSeconds.toFixed(0)} s of index builds, rollups and VACUUM), ` +
    `autocannon ${CONNECTIONS} connections × ${DURATION} s per endpoint after a ${WARMUP} s warm-up, ` +
    'load generator, API and PostgreSQL on the same 2 cores. `from` of /stats/timeseries and /quality/summary: 24 h ago.'
  return `${head}\n\n${out}\n\n${ratioText}\n\n${lines.join('\n')}`
}

// ── main ──
try {
  const db = await startDatabase()
  // A throw-away cluster: a commit need not wait for the disk; big sorts for the index builds.
  const loadUrl = `${db.url}?options=${encodeURIComponent('-c synchronous_commit=off -c maintenance_work_mem=512MB')}`
  const pool = createPool(loadUrl, { max: LOADERS + 2, statementTimeoutMs: 0, application: 'bench-api' })
  cleanups.push({ name: 'the bench pool', run: () => pool.end() })
  const meta = await loadData(pool)
  await pool.end()
  cleanups.pop()

  const api = await startOurApi(db.url)
  installBaseline()

  // Which of the endpoints this version of the API has: from its OpenAPI document.
  const doc = (await (await fetch(`${api.base}/docs/json`)).json()) as { paths?: Record<string, unknown> }
  const paths = new Set(Object.keys(doc.paths ?? {}))
  const dayAgo = encodeURIComponent(new Date(Date.now() - DAY_MS).toISOString())
  const endpoints: [label: string, path: string, route: string][] = [
    ['/sensor-data?limit=100', '/sensor-data?limit=100', '/sensor-data'],
    ['/sensor-data?station=paint&limit=100', '/sensor-data?station=paint&limit=100', '/sensor-data'],
    ['/stations/paint/latest', '/stations/paint/latest', '/stations/{station}/latest'],
    ['/stats/counts', '/stats/counts', '/stats/counts'],
    [
      '/stats/timeseries?station=paint&field=paint_thickness&bucket=1m&from=-24h',
      `/stats/timeseries?station=paint&field=paint_thickness&bucket=1m&from=${dayAgo}`,
      '/stats/timeseries',
    ],
    ['/quality/summary?from=-24h', `/quality/summary?from=${dayAgo}`, '/quality/summary'],
  ]
  const results: Measurement[] = []
  for (const [label, path, route] of endpoints) {
    if (!paths.has(route)) {
      progress(`ours ${label}: not in this API version (${route} missing from /docs/json) — skipped`)
      continue
    }
    results.push(await measure('ours', label, api.base, path, api.pid, db.postmaster))
  }
  // The same API with its response cache off: what each request costs when it reaches
  // PostgreSQL (the cache serves repeated reads between two ETL commits; here nothing commits).
  const uncached = await startOurApi(db.url, { EVF_API_CACHE_MS: '0' })
  for (const [label, path, route] of endpoints) {
    if (!paths.has(route) || !/^\/(sensor-data|stats\/)/.test(label)) continue
    results.push(await measure('ours, no cache', label, uncached.base, path, uncached.pid, db.postmaster))
  }
  const baseline = await startBaseline(db.url)
  results.push(
    await measure(
      'FastAPI',
      '/sensor-data?limit=100',
      baseline.base,
      '/sensor-data?limit=100',
      baseline.pid,
      db.postmaster,
    ),
  )
  const body = report(results, meta)
  process.stdout.write(`\n${body}\n`)
  if (!args['no-record']) {
    record(`bench:api, ${fmt(ROWS)} readings, ${CONNECTIONS} connections × ${DURATION} s`, body)
    progress('appended to docs/benchmarks.md')
  }
} catch (error) {
  process.exitCode = 1
  progress(`failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
} finally {
  await cleanup()
}
