import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, type WriteStream } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { stopChild } from '../shared/process.ts'

interface Child {
  name: string
  process: ChildProcess
  file: WriteStream
}

/**
 * Runs the stack's Node components as child processes. Their pino lines are shown in a compact
 * form and kept raw in `<logsDir>/<name>.log`. A child that exits on its own is never restarted
 * silently: the supervisor reports it (code and last lines) and `onFailure` stops the stack.
 */
export class Supervisor {
  private readonly children: Child[] = []
  private stopping = false

  constructor(
    private readonly logsDir: string,
    private readonly onFailure: (name: string, code: number | null, tail: string[]) => void,
    private readonly print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
  ) {}

  /** Starts an `evf` command of this build; `nodeArgs` go to node itself (a heap limit, say). */
  start(
    name: string,
    args: string[],
    env: Record<string, string>,
    nodeArgs: string[] = [],
  ): Promise<ChildProcess> {
    return this.startProcess(
      name,
      process.execPath,
      [...process.execArgv, ...nodeArgs, cliPath(), ...args],
      env,
    )
  }

  /**
   * Starts any program in a process group of its own. `show: false` keeps its lines out of the
   * terminal (they still go to its log file): for chatty programs such as Airflow's.
   */
  async startProcess(
    name: string,
    command: string,
    args: string[],
    env: Record<string, string>,
    opts: { show?: boolean } = {},
  ): Promise<ChildProcess> {
    await mkdir(this.logsDir, { recursive: true })
    const file = createWriteStream(join(this.logsDir, `${name}.log`), { flags: 'a' })
    const child = spawn(command, args, {
      env: { ...process.env, ...env, EVF_SUPERVISED: '1' },
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    const tail: string[] = []
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        file.write(`${line}\n`)
        tail.push(line)
        if (tail.length > 20) tail.shift()
        if (opts.show !== false) this.print(formatLine(name, line))
      })
    }
    child.once('exit', (code) => {
      if (this.stopping) return
      // A component that finished its work (a simulator given a duration) is not a failure.
      if (code === 0)
        this.print(formatLine(name, JSON.stringify({ level: 30, time: Date.now(), msg: 'finished' })))
      else this.onFailure(name, code, tail)
    })
    this.children.push({ name, process: child, file })
    return child
  }

  /** Stops children in the reverse order of their start, each given time to drain. */
  async stopAll(graceMs = 20_000): Promise<void> {
    this.stopping = true
    for (const child of [...this.children].reverse()) {
      await stopChild(child.process, graceMs, 'SIGTERM', true)
      child.file.end()
    }
  }
}

/** The CLI entry of this build: `dist/cli.js` when compiled, `src/cli.ts` under tsx. */
export function cliPath(): string {
  return new URL(`../cli${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url).pathname
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
}

/** `{"level":30,"time":…,"msg":"x","k":1}` → `12:00:01 etl      info  x k=1` */
export function formatLine(name: string, line: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line)
  } catch {
    return `${name.padEnd(9)} ${line}`
  }
  const { level, time, msg, pid: _pid, name: _name, hostname: _host, ...rest } = entry
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : ''
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ')
  return `${when} ${name.padEnd(9)} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${msg ?? ''} ${extra}`.trimEnd()
}
