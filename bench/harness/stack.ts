/**
 * The whole stack as a user starts it: `node dist/cli.js stack up` with flags, on its own data dir
 * and ports, found through the `stack.json` it writes, and stopped with the SIGINT a Ctrl-C would
 * send. Also the leftovers of an earlier, killed run: stopped before its data dir is removed.
 */
import type { ChildProcess } from 'node:child_process'
import { existsSync, readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/index.ts'
import { freePort } from '../../src/services/index.ts'
import { createLogger } from '../../src/shared/log.ts'
import { sleep } from '../../src/shared/time.ts'
import { startServices } from '../../src/stack/index.ts'
import {
  type Child,
  checkInterrupted,
  distCli,
  exited,
  healthy,
  logTail,
  portFree,
  startChild,
  stopLeftover,
} from './processes.ts'
import { progress } from './report.ts'

/** The child's environment: the bench's, without settings that would point the stack elsewhere. */
export function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env }
  for (const key of Object.keys(env)) {
    if (key.startsWith('EVF_') || key === 'DATABASE_URL' || key === 'KAFKA_BROKERS') delete env[key]
  }
  return env
}

/** Stops what an earlier run left in `dataDir` (stack, broker, PostgreSQL), then removes it. */
export async function freshDataDir(dataDir: string): Promise<void> {
  const leftovers: [string, string, NodeJS.Signals, RegExp][] = [
    ['stack up', join(dataDir, 'stack.json'), 'SIGINT', /cli\.js stack up/],
    ['Kafka', join(dataDir, 'kafka', 'broker.pid'), 'SIGTERM', /kafka\.Kafka/],
    ['PostgreSQL', join(dataDir, 'postgres', 'postmaster.pid'), 'SIGINT', /postgres/],
  ]
  for (const [name, file, signal, program] of leftovers)
    await stopLeftover(name, file, { signal, graceMs: 60_000, program })
  rmSync(dataDir, { recursive: true, force: true })
}

/** Throws when something already listens on one of the ports. */
export async function checkPortsFree(ports: number[]): Promise<void> {
  for (const port of ports) {
    if (!(await portFree(port)))
      throw new Error(`127.0.0.1:${port} is in use: stop what listens there or pick other ports`)
  }
}

/**
 * Spawns `stack up` with `args` in a process group of its own (a Ctrl-C at the terminal reaches
 * the bench, which stops the stack in order), stopped by cleanup as `stopStack` does unless the
 * caller replaces that stop's `run`.
 */
export function spawnStack(
  args: string[],
  opts: { logFile: string; env?: NodeJS.ProcessEnv; stdout?: 'pipe' | 'log' },
): Child {
  progress(`node dist/cli.js stack up ${args.join(' ')}`)
  const stack = startChild('the stack', process.execPath, [distCli, 'stack', 'up', ...args], {
    env: opts.env ?? cleanEnv(),
    logFile: opts.logFile,
    stdout: opts.stdout ?? 'log',
  })
  stack.stop.run = async () => {
    await stopStack(stack.child)
  }
  return stack
}

export interface RunningStack {
  child: ChildProcess
  pid: number
  databaseUrl: string
  kafkaBrokers: string
  apiBase: string
  logFile: string
}

/**
 * Starts `stack up` with `args`. `onEndpoints` is called as soon as stack.json names PostgreSQL
 * and Kafka (before the ETL starts, so a listener misses no commit); resolves once the API
 * answers /health.
 */
export async function startStack(opts: {
  args: string[]
  dataDir: string
  apiPort: number
  logFile: string
  onStart: (stack: Child) => void
  onEndpoints: (e: { databaseUrl: string; kafkaBrokers: string }) => Promise<void>
}): Promise<RunningStack> {
  const stack = spawnStack(opts.args, { logFile: opts.logFile })
  const { child } = stack
  opts.onStart(stack)
  const endpointsFile = join(opts.dataDir, 'stack.json')
  const apiBase = `http://127.0.0.1:${opts.apiPort}`
  let endpoints: { databaseUrl: string; kafkaBrokers: string } | undefined
  const deadline = Date.now() + 240_000
  for (;;) {
    checkInterrupted()
    if (exited(child))
      throw new Error(
        `stack up exited (${child.exitCode ?? child.signalCode}); ${opts.logFile}:\n${logTail(opts.logFile, 25)}`,
      )
    if (Date.now() > deadline) throw new Error(`stack up not ready in 240 s:\n${logTail(opts.logFile, 25)}`)
    if (!endpoints && existsSync(endpointsFile)) {
      endpoints = JSON.parse(readFileSync(endpointsFile, 'utf8')) as typeof endpoints
      if (endpoints) await opts.onEndpoints(endpoints)
    }
    if (endpoints && (await healthy(`${apiBase}/health`))) break
    await sleep(endpoints ? 200 : 50)
  }
  return { child, pid: child.pid!, ...endpoints, apiBase, logFile: opts.logFile }
}

/** SIGINT, as a Ctrl-C: the stack stops its components in order; SIGKILL to its group after `graceMs`. */
export async function stopStack(child: ChildProcess, graceMs = 120_000): Promise<number | null> {
  if (exited(child)) return child.exitCode
  const done = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  child.kill('SIGINT')
  const timer = setTimeout(() => {
    progress(`stack up did not stop within ${graceMs / 1000} s: SIGKILL`)
    try {
      process.kill(-child.pid!, 'SIGKILL')
    } catch {
      // gone meanwhile
    }
  }, graceMs)
  const code = await done
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

/**
 * The stack's own Kafka and PostgreSQL (`startServices`, as `stack up` starts them) in `dataDir`
 * on free ports, and a config logged in to the broker as its admin: bench:etl's and
 * bench:connect's loaders all run against these.
 */
export async function stackServices(dataDir: string) {
  const base = loadConfig(
    {
      dataDir,
      kafkaPort: await freePort(),
      kafkaControllerPort: await freePort(),
      kafkaHeapMb: 768,
      logLevel: 'warn',
    },
    {},
  )
  progress('starting Kafka and PostgreSQL…')
  const services = await startServices(base, createLogger('bench', 'warn'))
  return { services, config: { ...base, ...services.kafka.admin, databaseUrl: services.databaseUrl } }
}
