/**
 * The leak check inside every test file's process (test/run.ts `--import`s it): once the file's
 * tests and their `t.after` cleanups are done, nothing may keep the process alive — no open
 * socket, server, pool, timer or watcher, no child process. A leak fails the file, naming what was
 * left. (test/run.ts also looks for processes the file started that outlive it, detached ones
 * included.)
 *
 * Node's test runner reports a failing root hook without failing the exit code, so the exit code
 * is set here too; `--test-force-exit` then ends the process instead of waiting on the leak.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { after } from 'node:test'
import { isLoader } from './run-files.ts'

/** Handles close asynchronously (a socket's FIN, a child's exit event): this long to settle. */
const GRACE_MS = 3000

/** The resources open before any test ran (the runner's own pipes, if any), by kind. */
const baseline = tally(process.getActiveResourcesInfo())

function tally(kinds: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const k of kinds) counts.set(k, (counts.get(k) ?? 0) + 1)
  return counts
}

/** What is open beyond the baseline, e.g. `TCPSocketWrap ×2`. */
function leftOpen(): string[] {
  const left: string[] = []
  for (const [kind, n] of tally(process.getActiveResourcesInfo())) {
    const extra = n - (baseline.get(kind) ?? 0)
    if (extra > 0) left.push(extra > 1 ? `${kind} ×${extra}` : kind)
  }
  return left
}

/** This process's living children, as `pid command`. */
function children(): string[] {
  const pids: string[] = []
  try {
    for (const task of readdirSync('/proc/self/task'))
      pids.push(...readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter(Boolean))
  } catch {
    return [] // not Linux: the handle check still runs
  }
  return pids.flatMap((pid) => {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
      // A zombie (exited, not yet reaped) holds nothing; tsx's esbuild service is the loader's own.
      if (readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ') || isLoader(cmd)) return []
      return [`${pid} ${cmd}`]
    } catch {
      return [] // gone meanwhile
    }
  })
}

after(
  async () => {
    // Failed unless shown clean: a hook that fails (or times out) leaves the exit code at 0.
    const prior = process.exitCode
    process.exitCode = 1
    // A resource a test opened in its last moment (a listen, a connect) exists from the next turn.
    await new Promise((r) => setTimeout(r, 100))
    let handles = leftOpen()
    let procs = children()
    for (
      const deadline = Date.now() + GRACE_MS;
      (handles.length || procs.length) && Date.now() < deadline;
    ) {
      await new Promise((r) => setTimeout(r, 100))
      handles = leftOpen()
      procs = children()
    }
    if (handles.length === 0 && procs.length === 0) {
      process.exitCode = prior
      return
    }
    const what = [
      ...(handles.length ? [`open handles: ${handles.join(', ')}`] : []),
      ...(procs.length ? [`child processes: ${procs.join('; ')}`] : []),
    ]
    throw new Error(
      `leak: this file's tests left ${what.join(' and ')} — close each resource in \`t.after\` right after creating it`,
    )
  },
  { timeout: GRACE_MS + 10_000 },
)
