import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Logger } from './log.ts'
import { stopChild } from './process.ts'
import { backoff, sleep } from './time.ts'

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
      if (!this.opts.logsDir) throw new Error(`${spec.name}: a logged child needs the supervisor's logsDir`)
      await mkdir(this.opts.logsDir, { recursive: true })
      slot.file = createWriteStream(join(this.opts.logsDir, `${spec.name}.log`), { flags: 'a' })
    }
    this.slots.push(slot)
    return this.spawn(slot)
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
    const startedAt = Date.now()
    child.once('error', (error) => {
      this.opts.log.error({ component: spec.name, err: error.message }, `cannot run ${spec.name}`)
      // A program that could not be spawned emits no 'exit': it is handled as one that died.
      if (child.pid === undefined) void this.onExit(slot, child, null, 0)
    })
    child.once('exit', (code) => void this.onExit(slot, child, code, Date.now() - startedAt))
    return child
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

  private async onExit(slot: Slot, child: ChildProcess, code: number | null, ranMs: number): Promise<void> {
    if (this.stopping) return
    const { spec } = slot
    if (spec.restart.kind === 'stop') {
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
      return
    }
    // A child that ran for a while before it died starts again at once; a crash loop backs off.
    slot.restarts = ranMs > spec.restart.healthyAfterMs ? 1 : slot.restarts + 1
    const delay = backoff(slot.restarts)
    this.opts.log.error(
      {
        ...(spec.logFields ?? { component: spec.name }),
        pid: child.pid,
        exitCode: code,
        signal: child.signalCode,
        restartInMs: delay,
      },
      `${spec.label ?? spec.name} exited; starting it again`,
    )
    await sleep(delay, this.stopped.signal)
    if (!this.stopping) this.spawn(slot)
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
