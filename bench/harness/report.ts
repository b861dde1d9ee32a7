/**
 * What a benchmark prints and records: progress lines on stderr, Markdown tables, the ratio of a
 * figure to the baseline measured in the same run, and the dated section appended to
 * docs/benchmarks-history.md (docs/benchmarks.md holds the latest figures, updated by hand).
 */
import { appendFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '../../src/shared/paths.ts'

export const historyFile = join(repoRoot, 'docs', 'benchmarks-history.md')

export const machine = (): string =>
  `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`

export const progress = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`)
}

/** A number with thousands separators and `digits` decimals (a rounded -0 prints as 0). */
export const fmt = (x: number, digits = 0): string =>
  (Number(x.toFixed(digits)) + 0).toLocaleString('en-US', {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  })

/** Seconds since `t0` (a `performance.now()`), for progress lines. */
export const seconds = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** `figure ÷ baseline` with two decimals, and `—` when there is no baseline to divide by. */
export const ratio = (figure: number, baseline: number): string =>
  baseline > 0 && Number.isFinite(figure / baseline) ? (figure / baseline).toFixed(2) : '—'

/** The same ratio as a factor: `1.23×`. */
export const times = (figure: number, baseline: number): string => {
  const r = ratio(figure, baseline)
  return r === '—' ? r : `${r}×`
}

/**
 * Prints a benchmark's result on stdout and, unless `noRecord` or BENCH_NO_RECORD=1 (a trial
 * run), appends it to docs/benchmarks-history.md as a dated section with the machine it ran on.
 */
export function publish(
  title: string,
  body: string,
  opts: { noRecord?: boolean; leading?: string } = {},
): void {
  process.stdout.write(`${opts.leading ?? ''}${body}\n`)
  if (opts.noRecord || process.env.BENCH_NO_RECORD === '1') return
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16)
  appendFileSync(historyFile, `\n### ${title} — ${when} UTC\n\nMachine: ${machine()}\n\n${body.trim()}\n`)
  progress(
    'appended to docs/benchmarks-history.md (copy the figures into docs/benchmarks.md if they are the new ones)',
  )
}
