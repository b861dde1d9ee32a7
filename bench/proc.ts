/** CPU and memory of processes and of the machine, from /proc (Linux). */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { childPids } from './lib.ts'

export const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100

/** user + system CPU seconds of one process (0 when gone) */
export const cpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
  } catch {
    return 0
  }
}

export const rssKb = (pid: number): number => {
  const m = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) : 0
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
