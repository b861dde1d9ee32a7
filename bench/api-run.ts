/**
 * bench:api's process control: where it keeps its files, the child processes it starts (each in
 * a process group of its own, its output in a log file), and the cleanup that stops everything
 * it started, in reverse order, on success, error or a signal.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, openSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Instance } from 'autocannon'
import { repoRoot } from '../src/shared/paths.ts'
import { stopChild } from '../src/shared/process.ts'
import { progress } from './lib.ts'

export const cacheDir = join(repoRoot, '.cache', 'bench-api')
export const logDir = join(cacheDir, 'logs')
export const distCli = join(repoRoot, 'dist', 'cli.js')

// ── cleanup ──
interface Cleanup {
  name: string
  run: () => Promise<void>
}
const cleanups: Cleanup[] = []
let cleaning: Promise<void> | undefined
let interrupted = false
let running: Instance | undefined

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

export function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (let c = cleanups.pop(); c; c = cleanups.pop()) {
      progress(`stopping ${c.name}…`)
      await c.run().catch((error: unknown) => progress(`stopping ${c.name} failed: ${String(error)}`))
    }
  })()
  return cleaning
}

/** On SIGINT or SIGTERM: stop the load generator, stop everything started, exit 130. */
export function installSignalHandlers(): void {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      interrupted = true
      progress(`${sig}: stopping everything…`)
      running?.stop()
      void cleanup().finally(() => process.exit(130))
    })
  }
}

export const checkInterrupted = (): void => {
  if (interrupted) throw new Error('interrupted')
}

/** The autocannon instance running now, stopped by a signal. */
export const setRunning = (instance: Instance | undefined): void => {
  running = instance
}

// ── child processes ──
export function logTail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/** Starts a program in a process group of its own, its output to `<logDir>/<name>.log`, stopped by cleanup. */
export function startChild(
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
  const stop = onCleanup(name, () => stopChild(child, 10_000, 'SIGTERM', true))
  return { child, logFile, stop }
}

/** Throws, with the end of its log, if the child has exited. */
export function assertRunning(name: string, child: ChildProcess, logFile: string): void {
  if (child.exitCode !== null || child.signalCode !== null) {
    throw new Error(
      `${name} exited (${child.exitCode ?? child.signalCode}); ${logFile}:\n${logTail(logFile)}`,
    )
  }
}

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
export function newestTs(dir: string): number {
  let newest = 0
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.ts'))
      newest = Math.max(newest, statSync(join(entry.parentPath, entry.name)).mtimeMs)
  }
  return newest
}
