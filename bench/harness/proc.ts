/**
 * CPU and memory of processes and of the machine, from /proc (Linux). A process's CPU is read
 * from /proc/<pid>/stat: its own user + system time and, apart, that of the children it has
 * waited for (which is how the time of an exited child survives).
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { childPids } from '../../src/shared/process.ts'
import { sleep } from '../../src/shared/time.ts'
import { checkInterrupted } from './processes.ts'
import { progress } from './report.ts'

export { childPids }

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

export interface Stat {
  /** utime + stime, seconds */
  own: number
  /** cutime + cstime: children it has waited for, seconds */
  reaped: number
  /** start time in clock ticks since boot: with the pid, identifies a process */
  start: number
}

/** A process's CPU times and start, `undefined` when it is gone. */
export function stat(pid: number | 'self'): Stat | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ')
    const n = (i: number) => Number(f[i])
    return { own: (n(11) + n(12)) / CLK_TCK, reaped: (n(13) + n(14)) / CLK_TCK, start: n(19) }
  } catch {
    return undefined
  }
}

/** user + system CPU seconds of one process (0 when gone) */
export const cpuSeconds = (pid: number): number => stat(pid)?.own ?? 0

/** CPU seconds of a process and of the children it has waited for (0 when gone). */
export const cpuWithReaped = (pid: number): number => {
  const s = stat(pid)
  return s ? s.own + s.reaped : 0
}

/**
 * CPU seconds of this process's children that have exited and been waited for: a child's whole
 * life, start-up and exit included, which /proc/<pid> can no longer tell once it is gone.
 */
export const reapedCpu = (): number => stat('self')?.reaped ?? 0

/** kB of one `Key:` line of a /proc file (0 when missing or gone). */
export function kb(file: string, key: string): number {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(readFileSync(file, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

export const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
}

/** The argv of a process joined by spaces ('' when it is gone). */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

/** CPU seconds the whole machine was busy (all cores, from /proc/stat) */
export const machineBusy = (): number => {
  const [, ...f] = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/)
  const [user, nice, system, , , irq, softirq, steal] = f.map(Number)
  return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / CLK_TCK
}

/** CPU seconds per pid of a process tree, to diff two snapshots (a process born between counts from 0). */
export const treeCpu = (root: number): Map<number, number> =>
  new Map([root, ...childPids(root)].map((pid) => [pid, cpuSeconds(pid)]))

/** CPU seconds per pid of several process trees together. */
export const treesCpu = (roots: readonly number[]): Map<number, number> =>
  new Map(roots.flatMap((root) => [...treeCpu(root)]))

export const cpuDelta = (before: Map<number, number>, after: Map<number, number>): number =>
  [...after].reduce((sum, [pid, t]) => sum + t - (before.get(pid) ?? 0), 0)

/**
 * CPU seconds of process trees (each root and its direct children) since they started, children
 * that have exited included: a child's time moves into its parent's `cutime` when it is waited
 * for, so the sum never loses it and two sums subtract. (treeCpu drops a child that exits
 * between two snapshots: PostgreSQL's autovacuum workers, a backend that disconnects.)
 */
export const treesTotal = (roots: readonly number[]): number =>
  roots.flatMap((root) => [root, ...childPids(root)]).reduce((sum, pid) => sum + cpuWithReaped(pid), 0)

/** The pid on the first line of a pid file (a JSON file: its `pid`); 0 when there is none. */
export function pidIn(file: string): number {
  try {
    const text = readFileSync(file, 'utf8')
    return file.endsWith('.json')
      ? Number((JSON.parse(text) as { pid?: number }).pid) || 0
      : Number(text.split('\n')[0]) || 0
  } catch {
    return 0
  }
}

/** The same, throwing when the file names no pid. */
export function requirePid(file: string): number {
  const pid = pidIn(file)
  if (!pid) throw new Error(`no pid in ${file}`)
  return pid
}

/**
 * Samples, every `everyMs`, the peak memory of a set of processes: `read(pid)` in kB, the largest
 * of any one of them. `stop()` ends sampling and returns the peak in MB.
 */
export function peakMemory(pids: () => number[], read: (pid: number) => number, everyMs: number) {
  let peakKb = 0
  const sample = () => {
    for (const pid of pids()) {
      try {
        peakKb = Math.max(peakKb, read(pid))
      } catch {
        // a process has exited
      }
    }
  }
  sample()
  const timer = setInterval(sample, everyMs)
  return {
    stop: (): number => {
      clearInterval(timer)
      return peakKb / 1024
    },
  }
}

/**
 * Samples, every `everyMs`, the CPU seconds of process trees (`treesTotal(roots())`) with the
 * time, so that a run can tell afterwards how much CPU a process had used by a moment it learns
 * later (a loader's first transaction, from the rows' created_at). `at(ms)`: the last sample at
 * or before that epoch time (0 before the first).
 */
export function cpuTimeline(roots: () => number[], everyMs: number) {
  const samples: [at: number, cpu: number][] = []
  const sample = () => samples.push([Date.now(), treesTotal(roots())])
  sample()
  const timer = setInterval(sample, everyMs)
  return {
    stop: (): void => clearInterval(timer),
    at: (ms: number): number => samples.findLast(([t]) => t <= ms)?.[1] ?? 0,
  }
}

/**
 * The machine is shared (a build, a test run): before a run, with our servers idle, wait up to
 * `quietWait` seconds until the rest of the machine uses under a quarter of a core.
 */
export async function waitQuiet(quietWait: number): Promise<void> {
  const deadline = Date.now() + quietWait * 1000
  let told = false
  for (;;) {
    const b0 = machineBusy()
    await sleep(1000)
    const busy = machineBusy() - b0
    if (busy < 0.25) {
      if (told) progress('  the machine is quiet')
      return
    }
    if (Date.now() > deadline) {
      progress(`  the machine is still busy (${busy.toFixed(2)} cores used by others): measuring anyway`)
      return
    }
    if (!told)
      progress(`  other processes use ${busy.toFixed(2)} cores: waiting up to ${quietWait} s for quiet…`)
    told = true
    checkInterrupted()
  }
}
