/**
 * bench:soak's stretches of offered load: the whole soak (the stack's own simulator), or the
 * ramp's steps (`evf simulate` next to the stack, one after the other), then the drain; each
 * phase's rates, lag and slope from the lag samples.
 */
import { join } from 'node:path'
import type { Pool } from '../src/db/index.ts'
import { sleep } from '../src/shared/time.ts'
import { stationIds as stationNames } from '../test/plant.ts'
import {
  assertRunning,
  checkInterrupted,
  cleanEnv,
  distCli,
  exited,
  fmt,
  forget,
  progress,
  type RunningStack,
  simulatorSummary,
  startChild,
} from './harness/index.ts'
import type { LagSampler } from './soak-lag.ts'
import type { CommitLog } from './soak-latency.ts'
import type { ProcessMeter } from './soak-procs.ts'
import { isSustained, type Phase } from './soak-report.ts'

export const INTERVAL_MS = 100

export interface Plan {
  sensorsPerStation: number
  offered: number
}
/** One reading per sensor per interval on every station: the nearest whole number of sensors. */
export function planFor(rate: number): Plan {
  const stations = stationNames.length
  const sensorsPerStation = Math.max(1, Math.round((rate * INTERVAL_MS) / (1000 * stations)))
  return { sensorsPerStation, offered: (stations * sensorsPerStation * 1000) / INTERVAL_MS }
}

export interface Run {
  stack: RunningStack
  pool: Pool
  listener: CommitLog
  sampler: LagSampler
  meter: ProcessMeter
  t0: number
}

/** Throws when the bench was interrupted or the stack has exited. */
export function check(run: Run): void {
  checkInterrupted()
  assertRunning('stack up, during the run,', run.stack.child, run.stack.logFile)
}

export interface PhaseSettings {
  durationS: number
  stepS: number
  steps: number[]
  drainMs: number
  dataDir: string
  cacheDir: string
}

export function phases(settings: PhaseSettings) {
  const { dataDir, cacheDir } = settings

  function phaseOf(run: Run, label: string, plan: Plan, from: number, to: number, produced: number): Phase {
    // the second half: a simulator's first second (Node, the Kafka client, topics) produces nothing
    const half = from + (to - from) / 2
    const rates = run.sampler.rates(half, to)
    const p = {
      label,
      ...plan,
      from,
      to,
      produced,
      producedRate: rates.produced,
      loadedRate: rates.committed,
      lagEnd: run.sampler.at(to)?.lag ?? 0,
      slope: run.sampler.slope(half, to),
      p99: null,
    }
    return { ...p, sustained: isSustained(p) }
  }

  async function soakPhase(run: Run, plan: Plan): Promise<Phase[]> {
    const log = join(dataDir, 'logs', 'simulator.log')
    progress(`offering ${fmt(plan.offered)} readings/s for ${settings.durationS} s (stack's simulator)…`)
    const deadline = Date.now() + (settings.durationS + 120) * 1000
    for (;;) {
      check(run)
      const s = simulatorSummary(log)
      if (s) return [phaseOf(run, 'soak', plan, s.time - s.durationMs, s.time, s.produced)]
      if (Date.now() > deadline)
        throw new Error(`the simulator did not stop within ${settings.durationS + 120} s`)
      await sleep(500)
    }
  }

  /** One ramp step: `evf simulate` next to the stack, as a user runs it, for settings.stepS. */
  async function rampStep(run: Run, plan: Plan, i: number): Promise<Phase> {
    const step = startChild(
      `simulator of step ${i + 1}`,
      process.execPath,
      [
        // Next to the stack, as a user runs it: its broker and the `simulator` login come from its data dir.
        ...[distCli, 'simulate', '--log-level', 'info'],
        ...['--sim-interval-ms', String(INTERVAL_MS), '--sim-duration-sec', String(settings.stepS)],
        ...['--sim-sensors-per-station', String(plan.sensorsPerStation)],
      ],
      {
        env: { ...cleanEnv(), EVF_DATA_DIR: dataDir },
        logFile: join(cacheDir, `simulator-step-${i + 1}.log`),
      },
    )
    run.meter.addRoot(step.child.pid!)
    while (!exited(step.child)) {
      check(run)
      await sleep(250)
    }
    forget(step.stop)
    const log = step.logFile
    const code = step.child.exitCode
    const s = simulatorSummary(log)
    if (code !== 0 || !s) throw new Error(`evf simulate exited with ${code}; see ${log}`)
    return phaseOf(run, `${i + 1}`, plan, s.time - s.durationMs, s.time, s.produced)
  }

  async function rampPhases(run: Run): Promise<Phase[]> {
    const phases: Phase[] = []
    for (const [i, rate] of settings.steps.entries()) {
      const plan = planFor(rate)
      progress(
        `step ${i + 1}/${settings.steps.length}: ${fmt(plan.offered)} readings/s for ${settings.stepS} s…`,
      )
      const p = await rampStep(run, plan, i)
      phases.push(p)
      progress(
        `step ${i + 1}: produced ${fmt(p.producedRate)}/s, loaded ${fmt(p.loadedRate)}/s, lag ${fmt(p.lagEnd)}, ` +
          `slope ${fmt(p.slope, 1)}/s: ${p.sustained ? 'sustained' : 'NOT sustained — the ramp stops here'}`,
      )
      if (!p.sustained) break
    }
    return phases
  }

  /** After the last phase: until a sample shows lag 0, at most settings.drainMs. */
  async function drain(run: Run, since: number): Promise<{ ms: number | null; lag: number }> {
    check(run)
    progress(`simulator done: waiting up to ${settings.drainMs / 1000} s for the lag to reach 0…`)
    for (;;) {
      check(run)
      const s = run.sampler.samples.at(-1)
      if (s && s.t > since && s.lag === 0) return { ms: s.t - since, lag: 0 }
      if (Date.now() - since > settings.drainMs) return { ms: null, lag: s?.lag ?? Number.NaN }
      await sleep(250)
    }
  }

  /** The run's figures, from PostgreSQL and the samples, before the stack stops. */

  return { soakPhase, rampPhases, drain }
}
