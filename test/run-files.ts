/**
 * How test/run.ts runs test files: each in a node process of its own (node's test runner, in
 * process, with the leak check of test/leaks.ts), many side by side, the ones marked `@alone` one
 * at a time after them; every file timed; every process a file started and left behind found,
 * killed and counted as the file's failure.
 */
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { repoRoot } from '../src/shared/paths.ts'

export interface FileResult {
  file: string
  ok: boolean
  ms: number
  /** why it failed, beyond its own output: a leaked process, a timeout */
  problems: string[]
}

export interface RunOptions {
  env: Record<string, string>
  /** the default timeout of each test (`it`), unless the test sets its own */
  testTimeoutMs: number
  /** the whole file's process is killed after this */
  fileTimeoutMs: number
  /** how many files of the parallel phase run at once */
  concurrency: number
  /** every byte the files print, for the secret scan */
  onOutput: (chunk: Buffer) => void
}

const say = (msg: string) => process.stderr.write(`[test] ${msg}\n`)

/**
 * A file runs alone when it says so in a comment of its own, `// @alone: <why>` — it measures
 * time or rates, loads the machine, or holds something a neighbour would need.
 */
export function aloneReason(file: string): string | undefined {
  return /^\s*\/\/\s*@alone:\s*(.+)$/m.exec(readFileSync(join(repoRoot, file), 'utf8'))?.[1]
}

/** tsx compiles through an esbuild service process, started on the first file not in its cache. */
export const isLoader = (cmd: string): boolean => /\/@esbuild\/[^ ]*esbuild --service=/.test(cmd)

/** The processes (pid and command) whose environment carries `marker`: a file's descendants. */
function marked(marker: string): { pid: number; cmd: string }[] {
  const needle = Buffer.from(`EVF_TEST_FILE=${marker}\0`)
  return readdirSync('/proc').flatMap((name) => {
    const pid = Number(name)
    if (!Number.isInteger(pid) || pid === process.pid) return []
    try {
      if (!readFileSync(`/proc/${pid}/environ`).includes(needle)) return []
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')) return [] // exited, unreaped
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
      return isLoader(cmd) ? [] : [{ pid, cmd }]
    } catch {
      return [] // gone, or not ours to read
    }
  })
}

/** After its process exits, nothing the file started may live on (a child's own exit takes a moment). */
async function survivors(marker: string): Promise<string[]> {
  let left = marked(marker)
  for (const deadline = Date.now() + 5000; left.length > 0 && Date.now() < deadline; ) {
    await new Promise((r) => setTimeout(r, 200))
    left = marked(marker)
  }
  for (const p of left) {
    try {
      process.kill(p.pid, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }
  return left.map((p) => `${p.pid} ${p.cmd.slice(0, 160)}`)
}

/** One file in a process of its own; its output streamed (`live`) or shown whole when it ends. */
export async function runFile(file: string, opts: RunOptions, live: boolean): Promise<FileResult> {
  const marker = `${randomUUID()}:${file}`
  const t0 = Date.now()
  const child = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      '--import',
      './test/leaks.ts',
      '--test',
      // One file per process: no second process per file, and test/leaks.ts sees the file's handles.
      '--test-isolation=none',
      // A leak fails the file (test/leaks.ts) instead of holding the process open.
      '--test-force-exit',
      `--test-timeout=${opts.testTimeoutMs}`,
      '--test-reporter=spec',
      file,
    ],
    { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...opts.env, EVF_TEST_FILE: marker } },
  )
  const out: Buffer[] = []
  const take = (to: NodeJS.WriteStream) => (d: Buffer) => {
    opts.onOutput(d)
    if (live) to.write(d)
    else out.push(d)
  }
  child.stdout.on('data', take(process.stdout))
  child.stderr.on('data', take(process.stderr))
  const problems: string[] = []
  const timer = setTimeout(() => {
    problems.push(`still running after ${opts.fileTimeoutMs / 60_000} min: killed`)
    child.kill('SIGKILL')
  }, opts.fileTimeoutMs)
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  const ms = Date.now() - t0
  for (const p of await survivors(marker)) problems.push(`leak: process left running (killed): ${p}`)
  if (!live) {
    process.stdout.write(`\n── ${file} (${(ms / 1000).toFixed(1)} s)\n`)
    process.stdout.write(Buffer.concat(out))
  }
  for (const p of problems) say(`${file}: ${p}`)
  return { file, ok: code === 0 && problems.length === 0, ms, problems }
}

/** Runs `files` `concurrency` at a time, longest first (by the last run's times). */
export async function runParallel(files: string[], opts: RunOptions): Promise<FileResult[]> {
  const last = lastTimes()
  const queue = [...files].sort((a, b) => (last[b] ?? 0) - (last[a] ?? 0))
  const results: FileResult[] = []
  const worker = async () => {
    for (let file = queue.shift(); file; file = queue.shift()) {
      say(`▶ ${file}`)
      results.push(await runFile(file, opts, false))
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, worker))
  return results
}

const timesFile = join(repoRoot, 'node_modules', '.cache', 'evf-test-times.json')

function lastTimes(): Record<string, number> {
  try {
    return JSON.parse(readFileSync(timesFile, 'utf8')) as Record<string, number>
  } catch {
    return {}
  }
}

/** Keeps each file's time for the next run's order. */
export function rememberTimes(results: FileResult[]): void {
  const times = lastTimes()
  for (const r of results) times[r.file] = r.ms
  mkdirSync(dirname(timesFile), { recursive: true })
  writeFileSync(timesFile, `${JSON.stringify(times, null, 1)}\n`)
}
