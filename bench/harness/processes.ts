/**
 * The processes a benchmark starts: each in a process group of its own with its output in a log
 * file, stopped by one cleanup (last started, first stopped) on success, error or a signal;
 * waiting until one answers, and the end of its log when it does not.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs'
import { createServer } from 'node:net'
import { dirname, join } from 'node:path'
import { repoRoot } from '../../src/shared/paths.ts'
import { alive, stopChild, stopPid } from '../../src/shared/process.ts'
import { sleep } from '../../src/shared/time.ts'
import { cmdline, pidIn } from './proc.ts'
import { progress, seconds } from './report.ts'

export const distCli = join(repoRoot, 'dist', 'cli.js')

// ── cleanup ──
export interface Cleanup {
  name: string
  run: () => Promise<void>
}
const cleanups: Cleanup[] = []
let cleaning: Promise<void> | undefined
let interrupted = false
let onInterrupt: (() => void) | undefined

/** Registers a stop, run by `cleanup()` (last registered, first run); returns it, to change its `run`. */
export function onCleanup(name: string, run: () => Promise<void>): Cleanup {
  const c = { name, run }
  cleanups.push(c)
  return c
}

/** Runs one registered stop now (e.g. the ingest, before the report), and forgets it. */
export async function cleanupNow(c: Cleanup): Promise<void> {
  const i = cleanups.indexOf(c)
  if (i < 0) return
  cleanups.splice(i, 1)
  progress(`stopping ${c.name}…`)
  await c.run().catch((error: unknown) => progress(`stopping ${c.name} failed: ${String(error)}`))
}

/** Forgets a registered stop without running it (what it stops has ended by itself). */
export function forget(c: Cleanup): void {
  const i = cleanups.indexOf(c)
  if (i >= 0) cleanups.splice(i, 1)
}

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      progress(`stopping ${c.name}…`)
      await c.run().catch((error: unknown) => progress(`stopping ${c.name} failed: ${String(error)}`))
    }
  })()
  return cleaning
}

/** On SIGINT or SIGTERM: stop the load running now, stop everything started, exit 130. */
export function installSignalHandlers(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true
      progress(`${sig}: stopping everything…`)
      onInterrupt?.()
      void cleanup().finally(() => process.exit(130))
    })
  }
}

export const isInterrupted = (): boolean => interrupted

export const checkInterrupted = (): void => {
  if (interrupted) throw new Error('interrupted')
}

/** What a signal stops at once (the load generator running now), or nothing. */
export const setOnInterrupt = (stop: (() => void) | undefined): void => {
  onInterrupt = stop
}

/**
 * Runs a benchmark's `main`: signals handled, a failure printed and the exit code 1, and
 * everything started stopped at the end.
 */
export async function runBench(main: () => Promise<void>): Promise<void> {
  installSignalHandlers()
  try {
    await main()
  } catch (error) {
    process.exitCode = 1
    progress(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`)
  } finally {
    await cleanup()
  }
}

// ── child processes ──
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

export interface Child {
  child: ChildProcess
  logFile: string
  stop: Cleanup
}

export interface ChildOptions {
  cwd?: string
  env: NodeJS.ProcessEnv
  /** where the output goes: `<logFile>`, stdout piped to the caller when `stdout` is 'pipe' */
  logFile: string
  stdout?: 'pipe' | 'log'
  /** how cleanup stops it: the signal to its group, SIGKILL after `graceMs` (default SIGTERM, 10 s) */
  signal?: NodeJS.Signals
  graceMs?: number
}

/** Starts a program in a process group of its own, its output in a log file, stopped by cleanup. */
export function startChild(name: string, cmd: string, argv: string[], opts: ChildOptions): Child {
  mkdirSync(dirname(opts.logFile), { recursive: true })
  const out = openSync(opts.logFile, 'w')
  // A process group of its own: a Ctrl-C at the terminal reaches only us, and we stop it.
  const child = spawn(cmd, argv, {
    cwd: opts.cwd ?? repoRoot,
    env: opts.env,
    detached: true,
    stdio: ['ignore', opts.stdout === 'pipe' ? 'pipe' : out, out],
  })
  closeSync(out) // the child has its own
  const { signal = 'SIGTERM', graceMs = 10_000 } = opts
  const stop = onCleanup(name, () => stopChild(child, graceMs, signal, true))
  return { child, logFile: opts.logFile, stop }
}

export const exited = (child: ChildProcess): boolean => child.exitCode !== null || child.signalCode !== null

/** Throws, with the end of its log, if the child has exited. */
export function assertRunning(name: string, child: ChildProcess, logFile: string): void {
  if (exited(child))
    throw new Error(
      `${name} exited (${child.exitCode ?? child.signalCode}); ${logFile}:\n${logTail(logFile)}`,
    )
}

/** Whether `url` answers 2xx within 2 s. */
export async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

/** Until `url` answers 2xx; throws if the child exits or 60 s pass. */
export async function waitHealthy(
  name: string,
  url: string,
  child: ChildProcess,
  logFile: string,
): Promise<void> {
  const deadline = Date.now() + 60_000
  for (;;) {
    checkInterrupted()
    assertRunning(name, child, logFile)
    if (await healthy(url)) return
    if (Date.now() > deadline)
      throw new Error(`${name} did not answer ${url} within 60 s:\n${logTail(logFile)}`)
    await sleep(200)
  }
}

/**
 * Stops a server an earlier, killed run left behind, found by its pid file; with `program`, only
 * if that pid still runs it (not a process that reused the number).
 */
export async function stopLeftover(
  name: string,
  file: string,
  opts: { signal: NodeJS.Signals; graceMs: number; program?: RegExp; quiet?: boolean },
): Promise<void> {
  if (!existsSync(file)) return
  const pid = pidIn(file)
  if (!pid || !alive(pid) || (opts.program && !opts.program.test(cmdline(pid)))) return
  if (!opts.quiet) progress(`stopping ${name} (pid ${pid}) left running by an earlier run…`)
  await stopPid(pid, opts.signal, opts.graceMs)
}

/** Whether nothing listens on 127.0.0.1:`port` now. */
export const portFree = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const srv = createServer()
    srv.unref()
    srv.once('error', () => resolve(false))
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)))
  })

// ── dist/ ──
/** Newest modification time of the .ts files under a directory. */
function newestTs(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts'))
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}

/**
 * Builds dist/ when src/ is newer, unless `noBuild` (then measures dist/ as it is, e.g. while
 * src/ does not compile). Returns a note for the report ('' when dist/ is current).
 */
export function ensureDist(noBuild = false): string {
  const stale = !existsSync(distCli) || newestTs(join(repoRoot, 'src')) > statSync(distCli).mtimeMs
  if (!stale) return ''
  if (noBuild) {
    if (!existsSync(distCli)) throw new Error('--no-build, but there is no dist/cli.js')
    progress('WARNING: dist/ is older than src/ and --no-build was given: measuring the existing dist/')
    return '; dist/ older than src/ (--no-build)'
  }
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
  return ''
}

/** `.cache/<name>`, the benchmark's own directory; emptied first when `fresh`. */
export function benchDir(name: string, fresh = false): string {
  const dir = join(repoRoot, '.cache', name)
  if (fresh) rmSync(dir, { recursive: true, force: true })
  return dir
}
