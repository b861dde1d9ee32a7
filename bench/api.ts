/**
 * `npm run bench:api`: our API against the reference FastAPI app, on the same database.
 *
 *  1. starts its own PostgreSQL (a fresh cluster under .cache/bench-api/db) and migrates it;
 *     (a short trial: `--rows 100000 --duration 2 --warmup 1 --ingest-rate 0 --no-record`)
 *  2. generates `--rows` readings (default 10,000,000; or BENCH_ROWS) in SQL over the last 7
 *     days, shaped as the ETL writes them (bench/api-db.ts, bench/api-data.ts), then rollups,
 *     VACUUM and ANALYZE, as a long-running database would be;
 *  3. starts our API as production runs it (`node dist/cli.js api`, built first if stale);
 *  4. installs the FastAPI baseline (bench/baselines/fastapi) into .cache/bench-api/venv;
 *  5. drives each endpoint with autocannon (`--connections`, `--duration`), after a warm-up,
 *     sampling the server's RSS and the CPU of the server, PostgreSQL, the load generator and
 *     everything else on the machine (waiting first for the machine to be quiet) —
 *     bench/harness/http-load.ts;
 *  6. under ingest (`--ingest-rate`, default 10,000 readings/s; 0 skips it): Kafka, the paced
 *     simulator and `etl follow` load the same database while `/sensor-data?limit=100` is
 *     measured on ours, then on FastAPI; reports the rates the ETL achieved in each window and
 *     our cache's hit rate (bench/api-ingest.ts);
 *  7. prints tables, the ours ÷ FastAPI ratios and the targets (PASS/MISS — it never
 *     asserts), and appends them to docs/benchmarks-history.md (not with `--no-record`);
 *  8. stops everything it started, also on error and Ctrl-C (bench/harness/processes.ts).
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createPool } from '../src/db/index.ts'
import { DAY_MS, type LoadSummary, loadData } from './api-db.ts'
import { checkIngestPrerequisites, type IngestRun, runIngest } from './api-ingest.ts'
import { dataHead, ingestReport, report, SENSOR_DATA } from './api-report.ts'
import {
  benchDir,
  cleanupNow,
  ensureDist,
  fmt,
  installBaseline,
  type LoadOptions,
  type Measurement,
  measure,
  onCleanup,
  positiveInt as positive,
  progress,
  publish,
  runBench,
  type Server,
  startBaseline,
  startOurApi,
  startPostgres,
} from './harness/index.ts'

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: process.env.BENCH_ROWS ?? '10000000' },
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '1000000' },
    loaders: { type: 'string', default: '2' },
    // readings/s the ETL loads during the run under ingest; 0: no such run
    'ingest-rate': { type: 'string', default: '10000' },
    // only the run under ingest (a trial of it: no idle runs)
    'ingest-only': { type: 'boolean', default: false },
    // a trial run: print, do not append to docs/benchmarks-history.md
    'no-record': { type: 'boolean', default: false },
    // measure dist/ as it is, even when src/ is newer (e.g. while src/ does not compile)
    'no-build': { type: 'boolean', default: false },
    // before each run, wait up to this many seconds for the rest of the machine to be idle
    'quiet-wait': { type: 'string', default: '120' },
  },
})
const logDir = join(benchDir('bench-api'), 'logs')
const ROWS = positive('rows', args.rows)
const CHUNK = positive('chunk', args.chunk)
const LOADERS = positive('loaders', args.loaders)
const INGEST_RATE = Number(args['ingest-rate']) === 0 ? 0 : positive('ingest-rate', args['ingest-rate'])
if (args['ingest-only'] && INGEST_RATE === 0)
  throw new Error('--ingest-only with --ingest-rate 0: nothing to run')
const LOAD: LoadOptions = {
  connections: positive('connections', args.connections),
  duration: positive('duration', args.duration),
  warmup: Number(args.warmup) >= 0 ? Number(args.warmup) : 3,
  quietWait: Number(args['quiet-wait']) >= 0 ? Number(args['quiet-wait']) : 120,
}

/** The endpoints this version of the API has (from its OpenAPI document): [label, path]. */
async function endpointsOf(api: Server): Promise<[label: string, path: string][]> {
  const doc = (await (await fetch(`${api.base}/docs/json`)).json()) as { paths?: Record<string, unknown> }
  const paths = new Set(Object.keys(doc.paths ?? {}))
  const dayAgo = encodeURIComponent(new Date(Date.now() - DAY_MS).toISOString())
  const endpoints: [label: string, path: string, route: string][] = [
    [SENSOR_DATA, SENSOR_DATA, '/sensor-data'],
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
  return endpoints.flatMap(([label, path, route]) => {
    if (paths.has(route)) return [[label, path]]
    progress(`ours ${label}: not in this API version (${route} missing from /docs/json) — skipped`)
    return []
  })
}

/** Every endpoint on ours; the same API with its response cache off; /sensor-data on FastAPI. */
async function idleRuns(
  db: { url: string; postmaster: number },
  api: Server,
  fastapi: () => Promise<Server>,
) {
  const endpoints = await endpointsOf(api)
  const at = (system: Measurement['system'], s: Server, [label, path]: [string, string]) => ({
    system,
    label,
    path,
    base: s.base,
    headers: s.headers,
    pid: s.pid,
    postmaster: db.postmaster,
  })
  const results: Measurement[] = []
  for (const e of endpoints) results.push(await measure(at('ours', api, e), LOAD))
  // The same API with its response cache off: what each request costs when it reaches
  // PostgreSQL (the cache serves repeated reads between two ETL commits; here nothing commits).
  const uncached = await startOurApi({
    databaseUrl: db.url,
    logDir,
    env: { EVF_API_CACHE_MS: '0' },
    name: 'api-no-cache',
  })
  for (const e of endpoints.filter(([label]) => /^\/(sensor-data|stats\/)/.test(label)))
    results.push(await measure(at('ours, no cache', uncached, e), LOAD))
  await uncached.stop()
  const baseline = await fastapi()
  results.push(await measure(at('FastAPI', baseline, [SENSOR_DATA, SENSOR_DATA]), LOAD))
  return results
}

function output(meta: LoadSummary, distNote: string, idle: Measurement[], ingest: IngestRun | undefined) {
  const parts: string[] = []
  if (idle.length > 0) parts.push(report(idle, meta, LOAD, distNote))
  else parts.push(`${dataHead(meta, distNote)}.`)
  if (ingest)
    parts.push(`#### Under ${fmt(ingest.rate)} readings/s of ingest\n\n${ingestReport(ingest, LOAD)}`)
  const runs = `${idle.length ? '' : 'under ingest only, '}${LOAD.connections} connections × ${LOAD.duration} s`
  const rate = ingest ? `, ingest ${fmt(ingest.rate)} readings/s` : ''
  publish(`bench:api, ${fmt(ROWS)} readings, ${runs}${rate}`, parts.join('\n\n'), {
    noRecord: args['no-record'],
    leading: '\n',
  })
}

await runBench(async () => {
  if (INGEST_RATE > 0) checkIngestPrerequisites()
  const distNote = ensureDist(args['no-build'])
  const db = await startPostgres(join(benchDir('bench-api'), 'db'))
  // A throw-away cluster: a commit need not wait for the disk; big sorts for the index builds.
  const loadUrl = `${db.url}?options=${encodeURIComponent('-c synchronous_commit=off -c maintenance_work_mem=512MB')}`
  const pool = createPool(loadUrl, { max: LOADERS + 2, statementTimeoutMs: 0, application: 'bench-api' })
  const closePool = onCleanup('the bench pool', () => pool.end())
  const meta = await loadData(pool, { rows: ROWS, chunk: CHUNK, loaders: LOADERS })
  await cleanupNow(closePool)

  const api = await startOurApi({ databaseUrl: db.url, logDir })
  installBaseline()
  let baseline: Server | undefined
  const fastapi = async () => {
    baseline ??= await startBaseline(db.url, logDir)
    return baseline
  }
  const idle = args['ingest-only'] ? [] : await idleRuns(db, api, fastapi)
  const ingest =
    INGEST_RATE > 0
      ? await runIngest({
          databaseUrl: db.url,
          postmaster: db.postmaster,
          ours: api,
          fastapi: await fastapi(),
          rate: INGEST_RATE,
          load: LOAD,
        })
      : undefined
  output(meta, distNote, idle, ingest)
})
