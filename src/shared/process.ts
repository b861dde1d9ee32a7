import { type ChildProcess, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { PipelineError } from '../errors/index.ts'
import { sleep } from './time.ts'

/**
 * Sends `signal`, then SIGKILL after a grace period; resolves when the process is gone. With
 * `group`, the signals go to the child's whole process group (a detached child leads one), so
 * the programs it started (Airflow's workers, say) stop with it.
 */
export function stopChild(
  child: ChildProcess,
  graceMs: number,
  signal: NodeJS.Signals = 'SIGTERM',
  group = false,
): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve()
  const send = (sig: NodeJS.Signals) => {
    try {
      if (group && child.pid) process.kill(-child.pid, sig)
      else child.kill(sig)
    } catch {
      // already gone
    }
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => send('SIGKILL'), graceMs)
    child.once('exit', () => {
      clearTimeout(timer)
      resolve()
    })
    send(signal)
  })
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Stops a process left running by an earlier, killed stack: `signal`, then SIGKILL after `graceMs`. */
export async function stopPid(pid: number, signal: NodeJS.Signals, graceMs: number): Promise<void> {
  if (!pid || !alive(pid)) return
  process.kill(pid, signal)
  for (let waited = 0; waited < graceMs && alive(pid); waited += 100) await sleep(100)
  if (alive(pid)) process.kill(pid, 'SIGKILL')
}

/**
 * Children of `stack up` run in process groups of their own (so a terminal's Ctrl-C reaches only
 * the stack, which stops them in order). If the stack itself is killed, they must not live on:
 * this aborts when the parent process goes away.
 */
export function watchParent(controller: AbortController): void {
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid !== parent) controller.abort()
  }, 1000)
  timer.unref()
}

/** The direct children of a process, from /proc (none when it has exited). */
export function childPids(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number)
  } catch {
    return []
  }
}

export interface ToolOptions {
  env?: NodeJS.ProcessEnv
  cwd?: string
  /** `inherit` shows the tool's output as it runs; `pipe` (the default) keeps it for the result */
  stdio?: 'pipe' | 'inherit'
  /** strings shown as `***` wherever the output is returned or reported */
  secrets?: readonly string[]
  /** what the error adds when the tool cannot be started, e.g. where it comes from */
  hint?: string
}

/**
 * Runs a command-line tool to its end: its exit code and its output (stdout and stderr as they
 * came, every secret masked). Rejects only when the tool cannot be started (`PREREQUISITE_MISSING`).
 */
export function runTool(
  cmd: string,
  args: readonly string[],
  opts: ToolOptions = {},
): Promise<{ code: number; output: string }> {
  const stdio = opts.stdio ?? 'pipe'
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: opts.env, cwd: opts.cwd, stdio: ['ignore', stdio, stdio] })
    let output = ''
    child.stdout?.on('data', (d) => (output += d))
    child.stderr?.on('data', (d) => (output += d))
    child.on('error', (e) => {
      const hint = opts.hint ? ` (${opts.hint})` : ''
      reject(new PipelineError('PREREQUISITE_MISSING', `cannot run ${cmd}: ${e.message}${hint}`))
    })
    child.on('close', (code) => {
      for (const secret of opts.secrets ?? []) if (secret) output = output.replaceAll(secret, '***')
      resolve({ code: code ?? 1, output })
    })
  })
}

/** `runTool` that fails (`SERVICE_START_FAILED`, with the output's tail) unless the tool exits 0. */
export async function runToolOk(
  cmd: string,
  args: readonly string[],
  opts: ToolOptions = {},
): Promise<string> {
  const { code, output } = await runTool(cmd, args, opts)
  if (code !== 0) {
    const name = [cmd, ...args].join(' ')
    throw new PipelineError(
      'SERVICE_START_FAILED',
      `${name.length > 200 ? cmd : name} exited ${code}:\n${output.slice(-3000)}`,
    )
  }
  return output
}
