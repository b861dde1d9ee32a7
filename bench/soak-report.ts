/**
 * bench:soak's results: the tables and target lines it prints and records, and the plot's data.
 * Pure formatting: everything here is computed from a finished run's figures.
 */
import { readFileSync } from 'node:fs'
import { fmt, table } from './harness/index.ts'
import type { PlotData } from './plot.ts'
import type { LagSample } from './soak-lag.ts'
import type { Gap, LatencyStats, Percentiles } from './soak-latency.ts'
import { COMPONENTS, type Component, type Usage } from './soak-procs.ts'

/** One stretch of offered load: the whole soak, or one ramp step. */
export interface Phase {
  label: string
  sensorsPerStation: number
  offered: number
  /** the simulator's run, epoch ms */
  from: number
  to: number
  /** the simulator's own count */
  produced: number
  /** over the phase's second half, per s: Kafka's end offsets, and the ETL's committed positions */
  producedRate: number
  loadedRate: number
  lagEnd: number
  /** least-squares slope of the lag over the phase's second half, messages/s */
  slope: number
  p99: number | null
  sustained: boolean
}

export interface Results {
  mode: 'soak' | 'ramp'
  command: string
  intervalMs: number
  bucketMs: number
  warmupMs: number
  t0: number
  end: number
  phases: Phase[]
  produced: number
  kafkaEnd: number
  loaded: number
  deadLettered: number
  committed: number
  latency: LatencyStats
  gap: Gap
  maxLag: number
  drain: { ms: number | null; lag: number }
  usage: Map<Component, Usage>
  etlLog: string
  listenerDisconnects: number
  /** `stack up` after its SIGINT: exit code, time to stop, processes that outlived it */
  stop?: { code: number | null; ms: number; leftovers: number }
}

const ms = (x: number | null | undefined): string => (x === null || x === undefined ? '—' : `${fmt(x)} ms`)
const secs = (x: number): string => `${fmt(x / 1000, 1)} s`
const triple = (p: Percentiles) => `${ms(p.p50)} · ${ms(p.p99)} · ${ms(p.max)}`

/**
 * Sustained: the simulator got its rate into Kafka (≥ 95 % of offered), and the lag stayed
 * bounded — under 2 s worth of readings at the end, and not growing (slope over the second half
 * under 2 % of the rate).
 */
export function isSustained(p: Pick<Phase, 'offered' | 'producedRate' | 'lagEnd' | 'slope'>): boolean {
  return p.producedRate >= 0.95 * p.offered && p.lagEnd < 2 * p.offered && p.slope < 0.02 * p.offered
}

/** Warnings and errors of a component's log (pino JSON lines), grouped by message, most frequent first. */
export function logDigest(file: string, top = 4): string {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return 'no log'
  }
  const counts = new Map<string, { n: number; level: number; last: string }>()
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try {
      const e = JSON.parse(line) as { level?: number; msg?: string; err?: string; time?: number }
      if ((e.level ?? 0) < 40) continue
      const key = `${e.level! >= 50 ? 'error' : 'warn'}: ${e.msg ?? ''}`
      const c = counts.get(key) ?? { n: 0, level: e.level!, last: '' }
      c.n++
      c.last = `${e.time ? new Date(e.time).toISOString().slice(11, 19) : ''} ${e.err ?? ''}`.trim()
      counts.set(key, c)
    } catch {
      // not a log line
    }
  }
  if (counts.size === 0) return 'no warning or error'
  return [...counts]
    .sort((a, b) => b[1].n - a[1].n)
    .slice(0, top)
    .map(([k, c]) => `${fmt(c.n)}× ${k}${c.last ? ` (last ${c.last.slice(0, 160)})` : ''}`)
    .join('; ')
}

function summaryRows(r: Results): (string | number)[][] {
  const measured = r.latency.overall.n
  const drained =
    r.drain.ms === null ? `not drained (lag ${fmt(r.drain.lag)} after the bound)` : secs(r.drain.ms)
  const openGap = r.gap.openMs > 0 ? `; **commits stopped: none for the last ${secs(r.gap.openMs)}**` : ''
  return [
    ['produced (simulator’s own count)', fmt(r.produced)],
    ['produced (Kafka log-end offsets)', fmt(r.kafkaEnd)],
    ['loaded (rows in sensor_data)', fmt(r.loaded)],
    ['dead-lettered (rows in dead_letters)', fmt(r.deadLettered)],
    ['loaded + dead-lettered − produced', fmt(r.loaded + r.deadLettered - r.produced)],
    ['committed positions (sum of etl_offsets.next_offset)', fmt(r.committed)],
    ['latency reading → queryable p50 · p99 · max', triple(r.latency.overall)],
    [`the same, readings after the first ${secs(r.warmupMs)} of load`, triple(r.latency.steady)],
    ['rows measured (covered by a commit notification seen)', `${fmt(measured)} of ${fmt(r.loaded)}`],
    [
      'longest gap between commits while lag > 0',
      `${secs(r.gap.longestMs)} (at ${secs(r.gap.atMs)})${openGap}`,
    ],
    ['peak lag', fmt(r.maxLag)],
    ['drain: simulator stopped → lag 0 (lag sampled each second)', drained],
    [
      'stack stopped by SIGINT',
      r.stop
        ? `exit ${r.stop.code} in ${secs(r.stop.ms)}${r.stop.leftovers ? `, ${r.stop.leftovers} processes outlived it (killed)` : ''}`
        : '—',
    ],
  ]
}

function usageTable(r: Results): string {
  const span = (r.end - r.t0) / 1000
  const rows = COMPONENTS.flatMap((c) => {
    const u = r.usage.get(c)
    if (!u) return []
    return [
      [c, fmt(u.cpuSeconds, 1), fmt(u.cpuSeconds / span, 2), fmt(u.peakRssMb), fmt(u.largestMb), u.processes],
    ]
  })
  return table(
    [
      'component',
      'CPU s',
      `cores (avg over ${fmt(span)} s)`,
      'peak RSS MB (its processes summed)',
      'largest process MB',
      'processes (most at once)',
    ],
    rows,
  )
}

function phaseTable(r: Results): string {
  return table(
    [
      'step',
      'offered /s',
      'produced /s',
      'loaded /s',
      'lag at end',
      'lag slope /s',
      'p99 (commits in the step)',
      'sustained',
    ],
    r.phases.map((p) => [
      p.label,
      `${fmt(p.offered)} (${p.sensorsPerStation}/station)`,
      fmt(p.producedRate),
      fmt(p.loadedRate),
      fmt(p.lagEnd),
      fmt(p.slope, 1),
      ms(p.p99),
      p.sustained ? 'yes' : '**no**',
    ]),
  )
}

const line = (ok: boolean, what: string, detail: string) => `- ${ok ? 'PASS' : 'MISS'}: ${what}: ${detail}`

/** The issue's targets, printed as PASS/MISS — never asserted. */
export function targets(r: Results): string[] {
  const etl = r.usage.get('etl')
  const p99 = r.latency.steady.p99
  const best = Math.max(0, ...r.phases.filter((p) => p.sustained).map((p) => p.offered))
  const soak = r.phases[0]!
  const rate =
    r.mode === 'ramp'
      ? line(
          best >= 10_000,
          '10,000 readings/s sustained',
          best ? `highest sustained step ${fmt(best)}/s` : 'no step sustained',
        )
      : line(
          soak.offered >= 10_000 && soak.sustained,
          '10,000 readings/s sustained for the duration',
          `${fmt(soak.offered)}/s offered, ${fmt(soak.producedRate)}/s produced, ${fmt(soak.loadedRate)}/s loaded, lag ${fmt(soak.lagEnd)} at the end (slope ${fmt(soak.slope, 1)}/s)${soak.sustained ? '' : ' — not sustained'}`,
        )
  const diff = r.loaded + r.deadLettered - r.produced
  return [
    rate,
    line(
      diff === 0,
      'everything loaded (loaded + dead-lettered = produced)',
      `${fmt(r.loaded)} + ${fmt(r.deadLettered)} = ${fmt(r.loaded + r.deadLettered)} of ${fmt(r.produced)}`,
    ),
    line(
      p99 !== null && p99 < 1000,
      'p99 reading → queryable under 1 s',
      `${ms(p99)} after the first ${secs(r.warmupMs)} of load (all readings: ${ms(r.latency.overall.p99)})`,
    ),
    line(
      !!etl && etl.peakRssMb < 300,
      'ETL peak RSS under 300 MB',
      etl
        ? `${fmt(etl.peakRssMb)} MB, its ${etl.processes} process(es) summed (largest ${fmt(etl.largestMb)} MB)`
        : 'not seen',
    ),
  ]
}

/** Everything printed and recorded, as markdown. */
export function reportBody(r: Results, image: string): string {
  const best = r.phases.filter((p) => p.sustained).sort((a, b) => b.offered - a.offered)[0]
  const how =
    r.mode === 'ramp'
      ? 'One stack run with `--simulator false`; each step runs `evf simulate` next to it, steps back to back, the ramp stopping after the first step not sustained. '
      : 'The stack’s own simulator (`--sim-duration-sec`). '
  const parts = [
    `\`${r.command}\` — one reading per sensor every ${r.intervalMs} ms on 4 stations (sensors per station: the offered rate × ${r.intervalMs} / 4000, rounded); stack, simulator and bench on the same cores. ${how}` +
      'Rates produced (Kafka log-end offsets) and loaded (committed offsets, rows + dead letters) and the lag slope: over the second half of a step. ' +
      'Sustained: produced ≥ 95 % of offered, lag at the end under 2 s worth of readings, lag slope under 2 % of the rate. ' +
      'Latency: from the reading’s timestamp to the arrival of the notification its load transaction sends at commit; rows never committed are not measured.',
    table(['what', 'value'], summaryRows(r)),
    phaseTable(r),
    ...(r.mode === 'ramp'
      ? [`Highest rate sustained: **${best ? `${fmt(best.offered)} readings/s` : 'none of the steps'}**.`]
      : []),
    usageTable(r),
    `ETL log: ${r.etlLog}.${r.listenerDisconnects ? ` The LISTEN connection was lost ${r.listenerDisconnects}×: commits meanwhile are not measured.` : ''}`,
    targets(r).join('\n'),
    image,
  ]
  return parts.join('\n\n')
}

/** The plot's series, in seconds since the start of the measurement. */
export function plotData(r: Results, lag: readonly LagSample[], title: string): PlotData {
  const rel = (t: number) => (t - r.t0) / 1000
  const markers =
    r.mode === 'ramp'
      ? r.phases.map((p) => ({ t: rel(p.from), label: `${fmt(p.offered / 1000, 1)}k/s` }))
      : [
          { t: rel(r.phases[0]!.from), label: 'simulator starts' },
          { t: rel(r.phases[0]!.from + r.warmupMs), label: 'warm-up over' },
          { t: rel(r.phases[0]!.to), label: 'simulator stops' },
        ]
  return {
    title,
    lag: lag.map((s) => ({ t: rel(s.t), lag: s.lag })),
    latency: r.latency.buckets.map((b) => ({ t: b.t, p50: b.p50, p99: b.p99 })),
    bucketSec: r.bucketMs / 1000,
    markers,
    targetMs: 1000,
  }
}
