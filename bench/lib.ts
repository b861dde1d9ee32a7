import { appendFileSync } from 'node:fs'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { repoRoot } from '../src/shared/paths.ts'

export { childPids } from '../src/shared/process.ts'

export const machine = (): string =>
  `${cpus().length} cores (${cpus()[0]?.model.trim() ?? 'unknown'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`

export const progress = (msg: string): void => {
  process.stderr.write(`[bench] ${msg}\n`)
}

/** Appends a dated section to docs/benchmarks.md: the figures exactly as the benchmark printed them. */
export function record(title: string, body: string): void {
  const when = new Date().toISOString().replace('T', ' ').slice(0, 16)
  appendFileSync(
    join(repoRoot, 'docs', 'benchmarks.md'),
    `\n### ${title} — ${when} UTC\n\nMachine: ${machine()}\n\n${body.trim()}\n`,
  )
}

export function table(header: string[], rows: (string | number)[][]): string {
  const line = (cells: (string | number)[]) => `| ${cells.join(' | ')} |`
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n')
}

/** A number with thousands separators and `digits` decimals. */
export const fmt = (x: number, digits = 0): string =>
  x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits })

/** Seconds since `t0` (a `performance.now()`), for progress lines. */
export const seconds = (t0: number): string => `${((performance.now() - t0) / 1000).toFixed(1)} s`
