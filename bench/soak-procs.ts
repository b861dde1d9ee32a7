/**
 * bench:soak's process accounting, from /proc: the stack's process tree sorted into components
 * (ETL, API, PostgreSQL, Kafka, simulator, and `stack up` itself), their CPU over the run and
 * their peak RSS. A component is a process tree: the ETL with its worker processes, PostgreSQL
 * with its backends.
 */
import { childPids, cmdline, kb, stat } from './harness/index.ts'

export const COMPONENTS = ['etl', 'api', 'postgres', 'kafka', 'simulator', 'stack'] as const
export type Component = (typeof COMPONENTS)[number]

/** Which component a process is, from its command line; undefined for anything else. */
export function classify(cmd: string): Component | undefined {
  if (/(^|\/)java\s/.test(cmd) && cmd.includes('kafka.Kafka')) return 'kafka'
  if (/(^|\/)postgres(\s|:|$)/.test(cmd)) return 'postgres'
  if (!cmd.includes('cli.js')) return undefined
  if (/cli\.js\s+etl\b/.test(cmd)) return 'etl'
  if (/cli\.js\s+api\b/.test(cmd)) return 'api'
  if (/cli\.js\s+simulate\b/.test(cmd)) return 'simulator'
  if (/cli\.js\s+stack\s+up\b/.test(cmd)) return 'stack'
  return undefined
}

/**
 * A process's memory now and at its peak, kB: VmRSS and VmHWM (the peak catches what a
 * once-a-second sample misses); for PostgreSQL PSS for both, since each backend's RSS counts the
 * shared buffers it touched.
 */
function memory(pid: number, component: Component): { now: number; peak: number } {
  if (component === 'postgres') {
    const pss = kb(`/proc/${pid}/smaps_rollup`, 'Pss')
    return { now: pss, peak: pss }
  }
  return { now: kb(`/proc/${pid}/status`, 'VmRSS'), peak: kb(`/proc/${pid}/status`, 'VmHWM') }
}

export interface Usage {
  /** CPU seconds over the measurement */
  cpuSeconds: number
  /**
   * peak of the summed RSS of its processes, sampled (PSS for PostgreSQL: shared buffers counted
   * once), or the largest VmHWM of one of them if higher; MB
   */
  peakRssMb: number
  /** the largest peak of any one of its processes (VmHWM; PSS for PostgreSQL), MB */
  largestMb: number
  /** the most processes it had at once */
  processes: number
}

interface Track {
  first?: number
  last: number
  /** CPU of head processes that exited */
  retired: number
  peakKb: number
  largestKb: number
  processes: number
}

/**
 * Samples the process trees under `root` (and any extra roots added, e.g. simulators the bench
 * starts itself) once per `sample()`. CPU of a component is the sum over its live processes of
 * their own time plus their reaped children's (so backends that exit still count, through the
 * postmaster), taken as a difference between the first and the last sample; `stack up`'s
 * reaped children are other components, so only its own time counts, and a component's head
 * process that exits keeps its last reading (see `retire`).
 */
export class ProcessMeter {
  private readonly roots = new Set<number>()
  private readonly tracks = new Map<Component, Track>()
  /** head processes of components, pid → component and last CPU reading */
  private readonly heads = new Map<number, { component: Component; cpu: number }>()
  /** every process seen, pid → start time: what cleanup may kill if it outlives the stack */
  readonly seen = new Map<number, { start: number; component: Component }>()

  constructor(root: number) {
    this.roots.add(root)
  }

  addRoot(pid: number): void {
    this.roots.add(pid)
  }

  sample(): void {
    const now = new Map<Component, { cpu: number; kb: number; largest: number; n: number }>()
    const heads = new Set<number>()
    const visit = (pid: number, inherited: Component | undefined) => {
      const s = stat(pid)
      if (!s) return
      const component = inherited ?? classify(cmdline(pid))
      if (component) {
        this.seen.set(pid, { start: s.start, component })
        const time = s.own + (component === 'stack' ? 0 : s.reaped)
        if (!inherited) {
          heads.add(pid)
          this.heads.set(pid, { component, cpu: time })
        }
        const m = memory(pid, component)
        const c = now.get(component) ?? { cpu: 0, kb: 0, largest: 0, n: 0 }
        c.cpu += time
        c.kb += m.now
        c.largest = Math.max(c.largest, m.peak)
        c.n++
        now.set(component, c)
      }
      // Below `stack up`, each child starts a component of its own.
      for (const child of childPids(pid)) visit(child, component === 'stack' ? undefined : component)
    }
    for (const root of this.roots) visit(root, undefined)
    this.retire(heads)
    for (const [component, c] of now) {
      const t = this.tracks.get(component) ?? { last: 0, retired: 0, peakKb: 0, largestKb: 0, processes: 0 }
      const total = c.cpu + t.retired
      t.first ??= total
      t.last = Math.max(t.last, total)
      t.peakKb = Math.max(t.peakKb, c.kb, c.largest)
      t.largestKb = Math.max(t.largestKb, c.largest)
      t.processes = Math.max(t.processes, c.n)
      this.tracks.set(component, t)
    }
  }

  /**
   * A component's head process (the one its children descend from) that exited was reaped by a
   * process outside the component (stack up, the bench): its last CPU reading is kept, so the
   * component's total does not drop — a simulator per ramp step adds up.
   */
  private retire(alive: Set<number>): void {
    for (const [pid, h] of this.heads) {
      if (alive.has(pid)) continue
      const t = this.tracks.get(h.component)
      if (t) t.retired += h.cpu
      this.heads.delete(pid)
    }
  }

  /** Per component: CPU between the first and the last sample, peak RSS, most processes. */
  usage(): Map<Component, Usage> {
    const out = new Map<Component, Usage>()
    for (const c of COMPONENTS) {
      const t = this.tracks.get(c)
      if (!t) continue
      out.set(c, {
        cpuSeconds: t.last - (t.first ?? t.last),
        peakRssMb: t.peakKb / 1024,
        largestMb: t.largestKb / 1024,
        processes: t.processes,
      })
    }
    return out
  }

  /** pids of the component's processes alive now */
  alive(component: Component): number[] {
    return [...this.seen]
      .filter(([pid, p]) => p.component === component && stat(pid)?.start === p.start)
      .map(([pid]) => pid)
  }

  /** SIGKILLs every process seen that is still alive (the same process: pid and start time). */
  killLeftovers(): number[] {
    const killed: number[] = []
    for (const [pid, p] of this.seen) {
      if (stat(pid)?.start !== p.start) continue
      try {
        process.kill(pid, 'SIGKILL')
        killed.push(pid)
      } catch {
        // gone meanwhile
      }
    }
    return killed
  }
}
