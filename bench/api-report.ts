/**
 * bench:api's report: the runs on an idle database, then the run under ingest
 * (`/sensor-data?limit=100` on ours and on FastAPI, what the ETL achieved in each window, our
 * cache's hit rate); each a table, the ours ÷ FastAPI ratio and the issue's targets, PASS/MISS
 * (it never asserts).
 */
import type { Result } from 'autocannon'
import type { LoadSummary } from './api-db.ts'
import type { IngestRun } from './api-ingest.ts'
import type { SpanStats } from './api-ingest-monitor.ts'
import {
  type CacheCount,
  fmt,
  invalid,
  type LoadOptions,
  type Measurement,
  ratio,
  table,
} from './harness/index.ts'

export type ValidMeasurement = Measurement & { result: Result }
export const valid = (m: Measurement | undefined): m is ValidMeasurement => m !== undefined && !invalid(m)

/** Target lines, `- PASS: …`, `- MISS: …`, or `- INVALID: …` when `ok` is undefined. */
export function checklist() {
  const lines: string[] = []
  const check = (ok: boolean | undefined, what: string) =>
    lines.push(`- ${ok === undefined ? 'INVALID' : ok ? 'PASS' : 'MISS'}: ${what}`)
  return { lines, check }
}

export const SENSOR_DATA = '/sensor-data?limit=100'

/** The columns `cells` begins a row with. */
const HEAD = ['server', 'endpoint', 'req/s', 'p50 ms', 'p99 ms', 'non-2xx / errors']

/**
 * A measurement's first cells (server, endpoint, req/s, p50, p99, errors) and then `rest`; a run
 * that did not happen says why, and leaves `width` cells empty.
 */
function cells(m: Measurement, width: number, rest: (r: Result) => string[]): string[] {
  const r = m.result
  if (!r) return [m.system, `\`${m.label}\``, m.failure ?? 'not run', ...Array(width - 3).fill('')]
  return [
    m.system,
    `\`${m.label}\``,
    `${fmt(r.requests.average)}${invalid(m) ? ' (invalid: errors)' : ''}`,
    fmt(r.latency.p50, 0),
    fmt(r.latency.p99, 0),
    `${r.non2xx} / ${r.errors + r.timeouts}`,
    ...rest(r),
  ]
}

/** The measurements as a Markdown table, one row each. */
function resultsTable(ms: Measurement[]): string {
  const rows = ms.map((m) =>
    cells(m, 8, () => [
      `${m.peakRssMb.toFixed(0)} MB`,
      `${m.cpu.server.toFixed(2)} · ${m.cpu.postgres.toFixed(2)} · ${m.cpu.generator.toFixed(2)} · ${m.cpu.other.toFixed(2)}`,
    ]),
  )
  return table([...HEAD, 'server RSS peak', 'CPU cores: server · PostgreSQL · autocannon · other'], rows)
}

export function report(ms: Measurement[], meta: LoadSummary, load: LoadOptions, distNote: string): string {
  const ours = ms.find((m) => m.system === 'ours' && m.label === SENSOR_DATA)
  const theirs = ms.find((m) => m.system === 'FastAPI')
  const { lines, check } = checklist()
  let ratioText = 'ratio not available (a run failed or had errors)'
  const bare = ms.find((m) => m.system === 'ours, no cache' && m.label === SENSOR_DATA)
  if (valid(ours) && valid(theirs)) {
    const r = ours.result.requests.average / theirs.result.requests.average
    ratioText = `\`${SENSOR_DATA}\` ours ÷ FastAPI: **${r.toFixed(2)}×** req/s (p99 ${ours.result.latency.p99} ms vs ${theirs.result.latency.p99} ms)`
    if (valid(bare)) {
      ratioText += `; with our cache off: **${ratio(bare.result.requests.average, theirs.result.requests.average)}×** (p99 ${bare.result.latency.p99} ms)`
    }
    check(r >= 2, `${SENSOR_DATA} at least 2× FastAPI's req/s: ${r.toFixed(2)}×`)
  } else check(undefined, `${SENSOR_DATA} at least 2× FastAPI: a run failed or had errors`)
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
  return `${dataHead(meta, distNote)}, autocannon ${load.connections} connections × ${load.duration} s per endpoint after a ${load.warmup} s warm-up, load generator, API and PostgreSQL on the same 2 cores. \`from\` of /stats/timeseries and /quality/summary: 24 h ago.\n\n${resultsTable(ms)}\n\n${ratioText}\n\n${lines.join('\n')}`
}

/** What the database held, and how it was made. */
export const dataHead = (meta: LoadSummary, distNote: string): string =>
  `${fmt(meta.rows)} readings (${meta.sizeText} with indexes; ${meta.schemaNote}${distNote}; generated in SQL in ${meta.loadSeconds.toFixed(0)} s, then ${meta.prepareSeconds.toFixed(0)} s of index builds, rollups and VACUUM)`

// ── under ingest ──

/** The share of a rate achieved, below which the run was not under the ingest asked for. */
const HELD = 0.9

const hitRate = (c: CacheCount): number => c.hit / Math.max(1, c.hit + c.miss + c.none)

const cacheCell = (c: CacheCount | undefined): string =>
  c
    ? `${(hitRate(c) * 100).toFixed(2)} % (hit ${fmt(c.hit)} · miss ${fmt(c.miss)} · none ${fmt(c.none)})`
    : 'no cache'

const spanCell = (s: SpanStats | undefined): string =>
  s
    ? `${fmt(s.rows / s.seconds)} rows/s, ${fmt(s.commits / s.seconds, 1)} commits/s, longest gap ${s.longestGap.toFixed(1)} s; ` +
      `produced ${fmt(s.produced / s.seconds)}/s; lag ${fmt(s.lagEnd)} at end`
    : 'not measured'

function row({ m, span }: IngestRun['runs'][number]): string[] {
  const c = m.cpu
  return cells(m, 9, () => [
    cacheCell(m.cache),
    spanCell(span),
    [c.server, c.postgres, c.ingest, c.generator, c.other].map((x) => x.toFixed(2)).join(' · '),
  ])
}

export function ingestReport(run: IngestRun, load: LoadOptions): string {
  const head =
    `Under ingest: \`node dist/cli.js simulate\` paced at ${fmt(run.nominal)} readings/s (asked: ${fmt(run.rate)}) → ` +
    'Kafka (embedded broker, 127.0.0.1:39092) → `node dist/cli.js etl follow` → the same database, running through ' +
    `both runs below, one after the other; autocannon ${load.connections} connections × ${load.duration} s after a ${load.warmup} s warm-up, each. ` +
    'Every ETL commit that loads rows empties our API’s response cache. Cache hit rate: answers with `x-cache: hit` ÷ all ' +
    'answers in the window (counted by the load generator; the API counts the same on /metrics, evf_api_cache_requests_total); a miss is the first answer after a commit or ' +
    'after the cache’s TTL (EVF_API_CACHE_MS, default 1 s), `none` an answer with the cache out of the path (its LISTEN down).'
  const out = table(
    [
      ...HEAD,
      'cache hit rate',
      'ETL during the window',
      'CPU cores: server · PostgreSQL · ingest (Kafka, simulator, ETL) · autocannon · other',
    ],
    run.runs.map(row),
  )
  const whole = run.whole
    ? `Whole ingest, first ETL commit → end of the last window (${run.whole.seconds.toFixed(0)} s): ${spanCell(run.whole)}.`
    : ''
  const exits = run.exits.length ? `\n\nWARNING: ${run.exits.join('; ')} during the ingest.` : ''
  return `${head}\n\n${out}\n\n${whole}${exits}\n\n${targets(run)}`
}

function targets(run: IngestRun): string {
  const ours = run.runs.find((r) => r.m.system === 'ours')
  const theirs = run.runs.find((r) => r.m.system === 'FastAPI')
  const { lines, check } = checklist()
  let ratioText = 'ratio under ingest not available (a run failed or had errors)'
  if (valid(ours?.m) && valid(theirs?.m)) {
    const [o, t] = [ours.m.result, theirs.m.result]
    const r = o.requests.average / t.requests.average
    ratioText = `\`${SENSOR_DATA}\` under ingest, ours ÷ FastAPI: **${r.toFixed(2)}×** req/s (p99 ${o.latency.p99} ms vs ${t.latency.p99} ms)`
    check(r >= 2, `under ingest, ${SENSOR_DATA} at least 2× FastAPI's req/s: ${r.toFixed(2)}×`)
  } else check(undefined, `under ingest, ${SENSOR_DATA} at least 2× FastAPI: a run failed or had errors`)
  const m: Measurement | undefined = ours?.m
  check(
    valid(m) ? m.result.latency.p99 < 50 : undefined,
    `under ingest, ${SENSOR_DATA} p99 under 50 ms: ${m?.result ? `${m.result.latency.p99} ms` : (m?.failure ?? 'not run')}`,
  )
  const rates = run.runs.map((r) => (r.span ? r.span.rows / r.span.seconds : 0))
  check(
    rates.length === 2 ? rates.every((x) => x >= HELD * run.rate) : undefined,
    `the ETL loaded at least ${HELD * 100} % of ${fmt(run.rate)} readings/s in both windows: ` +
      `${rates.map((x) => `${fmt(x)}/s`).join(' and ')}` +
      (rates.every((x) => x >= HELD * run.rate)
        ? ''
        : ' — the figures above are under a lighter ingest than asked'),
  )
  return `${ratioText}\n\n${lines.join('\n')}`
}
