/**
 * bench:soak's stack: `node dist/cli.js stack up` started as a user starts it (flags, its own
 * data dir and ports), found through the `stack.json` it writes, and stopped with the SIGINT a
 * Ctrl-C would send. Also the leftovers of an earlier, killed run: stopped before its data dir
 * is removed.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { join } from 'node:path'
import { repoRoot } from '../src/shared/paths.ts'
import { alive, stopPid } from '../src/shared/process.ts'
import { sleep } from '../src/shared/time.ts'
import { progress } from './lib.ts'
import { cmdline } from './soak-procs.ts'

export const cli = join(repoRoot, 'dist', 'cli.js')

/** The child's environment: the bench's, without settings that would point the stack elsewhere. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (key.startsWith('EVF_') || key === 'DATABASE_URL' || key === 'KAFKA_BROKERS') delete env[key]
  }
  return env
}

function pidIn(file: string): number {
  try {
    const text = readFileSync(file, 'utf8')
    return file.endsWith('.json')
      ? Number((JSON.parse(text) as { pid?: number }).pid)
      : Number(text.split('\n')[0])
  } catch {
    return 0
  }
}

/** Stops what an earlier run left in `dataDir` (stack, broker, PostgreSQL), then removes it. */
export async function freshDataDir(dataDir: string): Promise<void> {
  const leftovers: [string, string, NodeJS.Signals, RegExp][] = [
    ['stack up', join(dataDir, 'stack.json'), 'SIGINT', /cli\.js stack up/],
    ['Kafka', join(dataDir, 'kafka', 'broker.pid'), 'SIGTERM', /kafka\.Kafka/],
    ['PostgreSQL', join(dataDir, 'postgres', 'postmaster.pid'), 'SIGINT', /postgres/],
  ]
  for (const [name, file, signal, pattern] of leftovers) {
    const pid = pidIn(file)
    // the pid must still be that program, not a process that reused the number
    if (!pid || !alive(pid) || !pattern.test(cmdline(pid))) continue
    progress(`stopping ${name} (pid ${pid}) left running by an earlier run…`)
    await stopPid(pid, signal, 60_000)
  }
  rmSync(dataDir, { recursive: true, force: true })
}

/** Throws when something already listens on one of the ports. */
export async function checkPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    const busy = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port })
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (busy) throw new Error(`127.0.0.1:${port} is in use: stop what listens there or pick other ports`)
  }
}

export interface RunningStack {
  child: ChildProcess
  pid: number
  databaseUrl: string
  kafkaBrokers: string
  apiBase: string
  logFile: string
}

function tail(file: string, lines = 25): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log)'
  }
}

/**
 * Starts `stack up` with `args` in a process group of its own (a Ctrl-C at the terminal reaches
 * the bench, which stops the stack in order). `onEndpoints` is called as soon as stack.json
 * names PostgreSQL and Kafka (before the ETL starts, so a listener misses no commit); resolves
 * once the API answers /health.
 */
export async function startStack(opts: {
  args: string[]
  dataDir: string
  apiPort: number
  logFile: string
  onStart: (child: ChildProcess) => void
  onEndpoints: (e: { databaseUrl: string; kafkaBrokers: string }) => Promise<void>
  interrupted: () => boolean
}): Promise<RunningStack> {
  mkdirSync(join(opts.logFile, '..'), { recursive: true })
  const out = openSync(opts.logFile, 'w')
  progress(`node dist/cli.js stack up ${opts.args.join(' ')}`)
  const child = spawn(process.execPath, [cli, 'stack', 'up', ...opts.args], {
    cwd: repoRoot,
    env: cleanEnv(),
    detached: true,
    stdio: ['ignore', out, out],
  })
  opts.onStart(child)
  const endpointsFile = join(opts.dataDir, 'stack.json')
  const apiBase = `http://127.0.0.1:${opts.apiPort}`
  let endpoints: { databaseUrl: string; kafkaBrokers: string } | undefined
  const deadline = Date.now() + 240_000
  for (;;) {
    if (opts.interrupted()) throw new Error('interrupted')
    if (child.exitCode !== null || child.signalCode !== null)
      throw new Error(
        `stack up exited (${child.exitCode ?? child.signalCode}); ${opts.logFile}:\n${tail(opts.logFile)}`,
      )
    if (Date.now() > deadline) throw new Error(`stack up not ready in 240 s:\n${tail(opts.logFile)}`)
    if (!endpoints && existsSync(endpointsFile)) {
      endpoints = JSON.parse(readFileSync(endpointsFile, 'utf8')) as typeof endpoints
      if (endpoints) await opts.onEndpoints(endpoints)
    }
    if (endpoints && (await healthy(`${apiBase}/health`))) break
    await sleep(endpoints ? 200 : 50)
  }
  return { child, pid: child.pid!, ...endpoints, apiBase, logFile: opts.logFile }
}

async function healthy(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(2000) })).ok
  } catch {
    return false
  }
}

/** SIGINT, as a Ctrl-C: the stack stops its components in order; SIGKILL to its group after `graceMs`. */
export async function stopStack(child: ChildProcess, graceMs = 120_000): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGINT')
  const timer = setTimeout(() => {
    progress(`stack up did not stop within ${graceMs / 1000} s: SIGKILL`)
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }, graceMs)
  const code = await exited
  clearTimeout(timer)
  return code
}

/** The 'simulator stopped' line of a simulator's log: its own count and run time. */
export function simulatorSummary(
  file: string,
): { produced: number; durationMs: number; time: number } | undefined {
  let text = ''
  try {
    text = readFileSync(file, 'utf8')
  } catch {
    return undefined
  }
  for (const line of text.split('\n')) {
    if (!line.includes('"simulator stopped"')) continue
    return JSON.parse(line) as { produced: number; durationMs: number; time: number }
  }
  return undefined
}
