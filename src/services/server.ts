import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { readFile, rm, writeFile } from 'node:fs/promises'
import { connect, createServer } from 'node:net'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { alive, stopChild, stopPid } from '../shared/process.ts'
import { sleep } from '../shared/time.ts'

/**
 * The one way a server process is run here (a Kafka node, the PostgreSQL primary, its standby):
 * a server left running by a killed stack is stopped through its pid file, ours is spawned in a
 * process group of its own, waited for until it answers (failing with its log's last lines if it
 * exits or never answers), and stopped with its own signal, its pid file removed.
 */

/** How a server left running by an earlier, killed stack is found and stopped. */
export interface Orphan {
  /** its pid file; the pid is the first line (PostgreSQL's `postmaster.pid` has more) */
  pidFile: string
  /** the warning logged when one is found, e.g. "stopping a Kafka broker left running by an earlier stack" */
  message: string
  /** the server's own clean stop: SIGTERM for Kafka, SIGINT (fast shutdown) for PostgreSQL */
  signal: NodeJS.Signals
  /** then SIGKILL */
  graceMs: number
  /** more fields for the warning */
  fields?: Record<string, unknown>
}

/** The pid a pid file names on its first line, or 0 without one. */
export async function readPid(pidFile: string): Promise<number> {
  if (!existsSync(pidFile)) return 0
  return Number((await readFile(pidFile, 'utf8').catch(() => '')).split('\n')[0]) || 0
}

/** Stops the server a killed stack left running (it still holds the data directory and ports). */
export async function stopOrphan(orphan: Orphan, log: Logger): Promise<void> {
  const pid = await readPid(orphan.pidFile)
  if (!pid || !alive(pid)) return
  log.warn({ pid, ...orphan.fields }, orphan.message)
  await stopPid(pid, orphan.signal, orphan.graceMs)
}

export interface Readiness {
  /** resolves once the server answers; rejects (with why) while it does not yet */
  probe: () => Promise<void>
  /** how long to wait in all */
  timeoutMs: number
  /** between probes */
  intervalMs: number
  /** its log, whose last `tailLines` lines a failure shows */
  logFile: string
  tailLines: number
  /** the failure's message, before the log's tail: `exited` is its exit code, null if it runs on */
  failure: (why: { exited: number | null; error: unknown }) => string
}

/**
 * Waits until `child` answers `probe`. One that exits, or does not answer within `timeoutMs`, is
 * killed and fails the start (`SERVICE_START_FAILED`) with the last lines of its log.
 */
export async function untilReady(child: ChildProcess, ready: Readiness): Promise<void> {
  let exited: number | null = null
  child.once('exit', (code) => {
    exited = code ?? -1
  })
  const deadline = Date.now() + ready.timeoutMs
  for (;;) {
    try {
      return await ready.probe()
    } catch (error) {
      if (exited === null && Date.now() < deadline) {
        await sleep(ready.intervalMs)
        continue
      }
      child.kill('SIGKILL')
      throw new PipelineError(
        'SERVICE_START_FAILED',
        `${ready.failure({ exited, error })}\nLast lines of ${ready.logFile}:\n${await tailOf(ready.logFile, ready.tailLines)}`,
        { cause: error },
      )
    }
  }
}

/** How a running server is stopped: its signal, SIGKILL after `graceMs`. */
export interface Stopping {
  signal: NodeJS.Signals
  graceMs: number
  /** a pid file we wrote for it, removed once it has stopped */
  pidFile?: string
}

/** Stops a server we started, then removes the pid file we wrote for it. */
export async function stopServer(child: ChildProcess, stopping: Stopping): Promise<void> {
  await stopChild(child, stopping.graceMs, stopping.signal)
  if (stopping.pidFile) await rm(stopping.pidFile, { force: true })
}

export interface ServerSpec {
  /** a server left running there is stopped first */
  orphan: Orphan
  /** what must happen once no orphan holds the data, before the spawn (config files, a port check) */
  prepare?: () => Promise<void>
  spawn: () => ChildProcess | Promise<ChildProcess>
  /** we write the pid file (Kafka); PostgreSQL writes its own */
  writePidFile: boolean
  ready: Readiness
  stopping: Omit<Stopping, 'pidFile'>
  log: Logger
}

export interface RunningServer {
  process: ChildProcess
  stop(): Promise<void>
}

/** Stops an orphan, prepares, spawns, writes the pid file, waits until it answers. */
export async function startServer(spec: ServerSpec): Promise<RunningServer> {
  await stopOrphan(spec.orphan, spec.log)
  await spec.prepare?.()
  const child = await spec.spawn()
  if (spec.writePidFile) await writeFile(spec.orphan.pidFile, String(child.pid))
  await untilReady(child, spec.ready)
  const stopping = { ...spec.stopping, pidFile: spec.writePidFile ? spec.orphan.pidFile : undefined }
  return { process: child, stop: () => stopServer(child, stopping) }
}

/** The last `lines` lines of a log file, or a note that none was written. */
export async function tailOf(file: string, lines: number): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log written)'
  }
}

/** Whether something accepts connections on 127.0.0.1:`port` now. */
export function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

/** A port the kernel says is free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}
