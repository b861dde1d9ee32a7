import { Cron } from 'croner'
import { sleep } from '../shared/time.ts'

export interface CronJob {
  /** the next tick, as an ISO string (undefined when there is none) */
  nextRun(): string | undefined
  /** Stops the ticks at once, then resolves when a run in progress has finished. */
  stop(): Promise<void>
}

/**
 * Runs `task` on a cron `expression` (croner), never two at once: a tick that finds the last
 * run still busy is skipped. The built-in orchestrator's one way to schedule.
 */
export function cron(expression: string, task: () => Promise<void>): CronJob {
  const job = new Cron(expression, { protect: true }, task)
  return {
    nextRun: () => job.nextRun()?.toISOString(),
    async stop() {
      job.stop()
      while (job.isBusy()) await sleep(100)
    },
  }
}
