/**
 * bench:api's report of the runs on an idle database: a table, the ours ÷ FastAPI ratio and the
 * issue's targets, PASS/MISS (it never asserts).
 */
import type { Result } from 'autocannon'
import type { LoadSummary } from './api-db.ts'
import { invalid, type LoadOptions, type Measurement } from './api-measure.ts'
import { fmt, table } from './lib.ts'

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

/** The measurements as a Markdown table, one row each. */
function resultsTable(ms: Measurement[]): string {
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
  return table(
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
}

export function report(ms: Measurement[], meta: LoadSummary, load: LoadOptions, distNote: string): string {
  const ours = ms.find((m) => m.system === 'ours' && m.label === SENSOR_DATA)
  const theirs = ms.find((m) => m.system === 'FastAPI')
  const { lines, check } = checklist()
  let ratioText = 'ratio not available (a run failed or had errors)'
  const bare = ms.find((m) => m.system === 'ours, no cache' && m.label === SENSOR_DATA)
  if (valid(ours) && valid(theirs)) {
    const ratio = ours.result.requests.average / theirs.result.requests.average
    ratioText = `\`${SENSOR_DATA}\` ours ÷ FastAPI: **${ratio.toFixed(2)}×** req/s (p99 ${ours.result.latency.p99} ms vs ${theirs.result.latency.p99} ms)`
    if (valid(bare)) {
      ratioText += `; with our cache off: **${(bare.result.requests.average / theirs.result.requests.average).toFixed(2)}×** (p99 ${bare.result.latency.p99} ms)`
    }
    check(ratio >= 2, `${SENSOR_DATA} at least 2× FastAPI's req/s: ${ratio.toFixed(2)}×`)
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
