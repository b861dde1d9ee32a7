import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Logger } from './log.ts'
import { stopChild } from './process.ts'
import { retry } from './retry.ts'

/**
 * What the supervisor does when a child exits on its own (not stopped by `stopAll`):
 * - `stop`: nothing is restarted behind anyone's back. A non-zero exit is logged with the
 *   child's last lines and `onFailure` is called (`stack up` stops everything and exits 1);
 *   exit 0 (a simulator given a duration) is reported as finished.
 * - `backoff`: the child is started again after `backoff(n)` (the project's one jittered
 *   delay), logged at error level, never silently; n grows while it crash-loops and starts
 *   again at 1 once a run lasted `healthyAfterMs`. For children whose work others rely on to
 *   go on: the ETL's worker processes, a broker of a Kafka cluster.
 */
export type RestartPolicy = { kind: 'stop' } | { kind: 'backoff'; healthyAfterMs: number }

export const stopOnExit: RestartPolicy = { kind: 'stop' }
export const restartWithBackoff = (healthyAfterMs = 60_000): RestartPolicy => ({
  kind: 'backoff',
  healthyAfterMs,
})

export interface ChildSpec {
  /** unique among the supervisor's children; names the log file and the log lines */
  name: string
  command: string
  args: string[]
  env: Record<string, string>
  restart: RestartPolicy
  /**
   * `inherit`: the child writes to this process's stdout/stderr. `log`: its lines go to
   * `<logsDir>/<name>.log` and, unless `quiet`, to the supervisor's `print` (its last 20 are
   * kept for the failure report); `quiet` is for chatty programs such as Airflow's.
   */
  output: 'inherit' | 'log' | 'quiet'
  /** a process group of its own: a terminal's Ctrl-C does not reach it, and stopping it stops what it started */
  group?: boolean
  /** what the restart log line says the child is, and the fields it carries */
  label?: string
  logFields?: Record<string, unknown>
  /** where its lines go instead of `<logsDir>/<name>.log` (a Kafka node's `logs/stdout.log`) */
  logFile?: string
  /** told of each spawn, the restarts included (a Kafka node writes its pid file, waits until it answers) */
  onSpawn?: (child: ChildProcess) => void
  /** told of each exit of its own, before the policy acts (not of one `stopAll` or the signal caused) */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void
}

export interface SupervisorOptions {
  log: Logger
  /** where `log` and `quiet` children keep their lines */
  logsDir?: string
  /** shows a child's line (`stack up` formats it for a terminal) */
  print?: (name: string, line: string) => void
  /** a `stop` child exited non-zero */
  onFailure?: (name: string, code: number | null) => void
  /** once aborted, no child is restarted or reported: its exit is the owner's doing */
  signal?: AbortSignal
}

interface Slot {
  spec: ChildSpec
  process?: ChildProcess
  file?: WriteStream
  tail: string[]
  restarts: number
}

/**
 * Runs child processes under a restart policy each (`RestartPolicy`): the stack's components
 * and the ETL's worker processes alike. `stopAll` stops them in the reverse order of their start.
 */
export class Supervisor {
  private readonly slots: Slot[] = []
  private readonly stopped = new AbortController()

  constructor(private readonly opts: SupervisorOptions) {
    opts.signal?.addEventListener('abort', () => this.stopped.abort(), { once: true })
  }

  private get stopping(): boolean {
    return this.stopped.signal.aborted
  }

  /** Starts a child; resolves once it is spawned. */
  async start(spec: ChildSpec): Promise<ChildProcess> {
    const slot: Slot = { spec, tail: [], restarts: 0 }
    if (spec.output !== 'inherit') {
      const logsDir = spec.logFile ? dirname(spec.logFile) : this.opts.logsDir
      if (!logsDir) throw new Error(`${spec.name}: a logged child needs the supervisor's logsDir`)
      await mkdir(logsDir, { recursive: true })
      slot.file = createWriteStream(spec.logFile ?? join(logsDir, `${spec.name}.log`), { flags: 'a' })
    }
    this.slots.push(slot)
    const child = this.spawn(slot)
    const { restart } = spec
    if (restart.kind === 'stop') void this.exited(slot, child).then(({ code }) => this.reportExit(slot, code))
    else void this.keepRunning(slot, child, restart.healthyAfterMs)
    return child
  }

  /**
   * Stops the running children (SIGTERM, SIGKILL after `graceMs`) without ending their
   * supervision: their policy decides what follows (the ETL watchdog's recovery).
   */
  async recycle(graceMs: number): Promise<void> {
    if (this.stopping) return
    await Promise.all(
      this.slots.map((s) => s.process && stopChild(s.process, graceMs, 'SIGTERM', s.spec.group)),
    )
  }

  /** Stops every child, each given `graceMs` to drain: in reverse start order, or all at once. */
  async stopAll(opts: { graceMs?: number; parallel?: boolean } = {}): Promise<void> {
    const graceMs = opts.graceMs ?? 20_000
    this.stopped.abort()
    const stop = async (slot: Slot) => {
      if (slot.process) await stopChild(slot.process, graceMs, 'SIGTERM', slot.spec.group)
      slot.file?.end()
    }
    if (opts.parallel) await Promise.all(this.slots.map(stop))
    else for (const slot of [...this.slots].reverse()) await stop(slot)
  }

  private spawn(slot: Slot): ChildProcess {
    const { spec } = slot
    const child = spawn(spec.command, spec.args, {
      env: { ...process.env, ...spec.env, EVF_SUPERVISED: '1' },
      detached: spec.group ?? false,
      stdio: slot.file ? ['ignore', 'pipe', 'pipe'] : ['ignore', 'inherit', 'inherit'],
    })
    slot.process = child
    if (slot.file) this.collectLines(slot, child)
    spec.onSpawn?.(child)
    return child
  }

  /** Resolves when `child` exits; a program that could not be spawned counts as one that died. */
  private exited(slot: Slot, child: ChildProcess): Promise<ChildExit> {
    return new Promise<ChildExit>((resolve) => {
      child.once('error', (error) => {
        this.opts.log.error({ component: slot.spec.name, err: error.message }, `cannot run ${slot.spec.name}`)
        // A program that could not be spawned emits no 'exit'.
        if (child.pid === undefined) resolve({ child, code: null, signal: null })
      })
      child.once('exit', (code, signal) => resolve({ child, code, signal }))
    }).then((exit) => {
      if (!this.stopping) slot.spec.onExit?.(exit.code, exit.signal)
      return exit
    })
  }

  /** The `stop` policy: an exit of its own is reported, never restarted. */
  private reportExit(slot: Slot, code: number | null): void {
    if (this.stopping) return
    const { spec } = slot
    if (code === 0) {
      const finished = JSON.stringify({ level: 30, time: Date.now(), msg: 'finished' })
      this.opts.print?.(spec.name, finished)
      return
    }
    this.opts.log.error(
      { component: spec.name, exitCode: code, lastLines: slot.tail.slice(-5) },
      `${spec.name} exited unexpectedly`,
    )
    this.opts.onFailure?.(spec.name, code)
  }

  /**
   * The `backoff` policy: every exit is a failed try of the one `retry`, which starts the child
   * again after `backoff(attempt)`; a run longer than `healthyAfterMs` starts the count over.
   * Ends only when the supervisor stops.
   */
  private async keepRunning(slot: Slot, first: ChildProcess, healthyAfterMs: number): Promise<void> {
    let next: ChildProcess | undefined = first
    const run = async (): Promise<never> => {
      const child = next ?? this.spawn(slot)
      next = undefined
      throw new ChildExited(await this.exited(slot, child))
    }
    const { spec } = slot
    await retry(run, {
      signal: this.stopped.signal,
      healthyAfterMs,
      onRetry: ({ error, delayMs }) => {
        const { child, code, signal } = (error as ChildExited).exit
        this.opts.log.error(
          {
            ...(spec.logFields ?? { component: spec.name }),
            pid: child.pid,
            exitCode: code,
            signal,
            restartInMs: delayMs,
          },
          `${spec.label ?? spec.name} exited; starting it again`,
        )
      },
    }).catch(() => undefined)
  }

  private collectLines(slot: Slot, child: ChildProcess): void {
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue
      createInterface({ input: stream }).on('line', (line) => {
        slot.file?.write(`${line}\n`)
        slot.tail.push(line)
        if (slot.tail.length > 20) slot.tail.shift()
        if (slot.spec.output === 'log') this.opts.print?.(slot.spec.name, line)
      })
    }
  }
}

interface ChildExit {
  child: ChildProcess
  code: number | null
  signal: NodeJS.Signals | null
}

/** A supervised child that exited: a failed try, for `retry`. */
class ChildExited extends Error {
  constructor(readonly exit: ChildExit) {
    super(`exited with ${exit.code ?? exit.signal}`)
  }
}

/** The CLI entry of this build: `dist/cli.js` when compiled, `src/cli.ts` under tsx. */
export function cliPath(): string {
  return new URL(`../cli${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).pathname
}

/** The command and arguments that run `evf <args>` of this build; `nodeArgs` go to node itself. */
/**
 * V8 flags that bound a process evf starts: its old space at `heapMb`, and, with `semiSpaceMb`, its
 * young generation. Node 26's V8 grows the young generation's semi-spaces to 32 MB under steady
 * allocation. Measured with 8 MB semi-spaces: an API streaming a 260 MB export peaked at
 * 142–150 MB of RSS instead of 175–193 MB (Node 20: 137 MB); an ETL worker loading 1,000,000
 * readings at 264 MB instead of 323 MB, at the same rate within the run-to-run spread.
 */
export const heapFlags = (heapMb: number, semiSpaceMb?: number): string[] => [
  `--max-old-space-size=${heapMb}`,
  ...(semiSpaceMb ? [`--max-semi-space-size=${semiSpaceMb}`] : []),
]

/** The young generation of the API and ETL processes evf starts: see `heapFlags`. */
export const SEMI_SPACE_MB = 8

/**
 * An ETL worker's flags: `heapFlags`, and an old generation whose first collection waits until
 * it holds 96 MB (at most half the limit). Without it, V8 sized the old generation for the ~32 MB
 * a worker keeps alive and, with a 224 MB limit, collected it every 200 ms under load: at 35,000
 * readings/s a worker spent 15 µs of CPU per reading instead of 9, for 160 MB of RSS instead of
 * 197 (docs/etl.md, issue 24).
 */
export const etlWorkerHeapFlags = (heapMb: number): string[] => [
  ...heapFlags(heapMb, SEMI_SPACE_MB),
  `--initial-old-space-size=${Math.min(96, Math.floor(heapMb / 2))}`,
]

export function evfCommand(args: string[], nodeArgs: string[] = []): { command: string; args: string[] } {
  return { command: process.execPath, args: [...process.execArgv, ...nodeArgs, cliPath(), ...args] }
}

/**
 * A component of `stack up`: a process group of its own (a terminal's Ctrl-C reaches only the
 * stack, which stops it in order), its lines logged and shown unless `quiet`, and the stack
 * stopped if it dies, unless `restart` says otherwise.
 */
export function component(
  name: string,
  command: { command: string; args: string[] },
  env: Record<string, string>,
  opts: { output?: 'log' | 'quiet'; restart?: RestartPolicy } = {},
): ChildSpec {
  return {
    name,
    ...command,
    env,
    restart: opts.restart ?? stopOnExit,
    output: opts.output ?? 'log',
    group: true,
  }
}
