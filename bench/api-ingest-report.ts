/**
 * The report of bench:api's run under ingest: `/sensor-data?limit=100` on ours and on FastAPI,
 * what the ETL achieved in each window, our cache's hit rate, and the targets (PASS/MISS).
 */
import type { IngestRun } from './api-ingest.ts'
import type { SpanStats } from './api-ingest-monitor.ts'
import type { CacheCount, LoadOptions, Measurement } from './api-measure.ts'
import { checklist, SENSOR_DATA, valid } from './api-report.ts'
import { fmt, table } from './lib.ts'

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
  const r = m.result
  if (!r) return [m.system, `\`${m.label}\``, m.failure ?? 'not run', '', '', '', '', '', '']
  const c = m.cpu
  return [
    m.system,
    `\`${m.label}\``,
    `${fmt(r.requests.average)}${valid(m) ? '' : ' (invalid: errors)'}`,
    fmt(r.latency.p50, 0),
    fmt(r.latency.p99, 0),
    `${r.non2xx} / ${r.errors + r.timeouts}`,
    cacheCell(m.cache),
    spanCell(span),
    [c.server, c.postgres, c.ingest, c.generator, c.other].map((x) => x.toFixed(2)).join(' · '),
  ]
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
      'server',
      'endpoint',
      'req/s',
      'p50 ms',
      'p99 ms',
      'non-2xx / errors',
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
    const ratio = o.requests.average / t.requests.average
    ratioText = `\`${SENSOR_DATA}\` under ingest, ours ÷ FastAPI: **${ratio.toFixed(2)}×** req/s (p99 ${o.latency.p99} ms vs ${t.latency.p99} ms)`
    check(ratio >= 2, `under ingest, ${SENSOR_DATA} at least 2× FastAPI's req/s: ${ratio.toFixed(2)}×`)
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
