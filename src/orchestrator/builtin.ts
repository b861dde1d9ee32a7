import type { Config } from '../config/index.ts'
import { createPool, maintain, type Pool } from '../db/index.ts'
import { classify } from '../errors/index.ts'
import { runBounded } from '../etl/index.ts'
import type { Logger } from '../shared/log.ts'
import { component, etlWorkerHeapFlags, evfCommand, heapFlags } from '../shared/supervisor.ts'
import { cron } from './cron.ts'
import type { Orchestrator } from './types.ts'

const SUPERVISOR_SEMI_SPACE_MB = 1

/**
 * The built-in orchestrator, Airflow's peer: `stack up` starts the ETL as one supervised
 * component, `etl follow` (continuous, the default) or `etl schedule` (`scheduleEtl` below, in
 * that process); `etlMode` off starts none.
 */
export const builtin: Orchestrator = {
  async start({ config, env, etlDatabaseUrl, supervisor }) {
    if (config.etlMode !== 'off') {
      const mode = config.etlMode === 'schedule' ? 'schedule' : 'follow'
      // `etl schedule` loads in its own process, with a loader's flags; `etl follow` only
      // supervises its worker processes (which get those flags) and allocates little: 1 MB
      // semi-spaces, not 8.
      const flags =
        mode === 'follow'
          ? heapFlags(config.etlHeapMb, SUPERVISOR_SEMI_SPACE_MB)
          : etlWorkerHeapFlags(config.etlHeapMb)
      const command = evfCommand(['etl', mode], flags)
      await supervisor.start(component('etl', command, { ...env, DATABASE_URL: etlDatabaseUrl }))
    }
    const etl = config.etlMode === 'schedule' ? `scheduled: ${config.etlSchedule}` : config.etlMode
    return { etl, lines: [] }
  },
}

/**
 * `etl schedule`: bounded runs on the cron schedule (default every 5 minutes, like the
 * reference DAG), never two at once, until `signal` aborts; a run in progress then finishes its
 * transaction (it watches the same signal).
 */
export async function scheduleEtl(
  config: Config,
  pool: Pool,
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const job = cron(config.etlSchedule, async () => {
    try {
      const summary = await runBounded(config, pool, log, undefined, signal, 'scheduled')
      log.info({ summary }, 'scheduled ETL run finished')
    } catch (error) {
      const e = classify(error)
      log.error({ code: e.code, err: e.message }, 'scheduled ETL run failed')
    }
    log.info({ next: job.nextRun() }, 'next scheduled ETL run')
  })
  log.info({ schedule: config.etlSchedule, next: job.nextRun() }, 'ETL scheduled')
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await job.stop()
}

export interface Maintenance {
  /** Stops the hourly runs at once; resolves when a run in progress is done and its pool closed. */
  stop(): Promise<void>
}

/**
 * Storage maintenance (`db maintain`: partitions ahead, retention, statistics) now and at
 * minute 7 of every hour, under either orchestrator: the Airflow DAG maintains after each of its
 * runs too, but the partitions ahead must not depend on a DAG that may be paused. A failure is
 * logged and retried at the next hour.
 */
export async function startMaintenance(
  databaseUrl: string,
  retentionDays: number,
  log: Logger,
): Promise<Maintenance> {
  const pool = createPool(databaseUrl, { max: 1, statementTimeoutMs: 0, application: 'evf-maintain' })
  const run = async () => {
    try {
      log.info({ maintenance: await maintain(pool, retentionDays) }, 'storage maintained')
    } catch (error) {
      log.error({ err: String(error) }, 'storage maintenance failed; retried at the next hour')
    }
  }
  await run()
  const job = cron('7 * * * *', run)
  return {
    async stop() {
      await job.stop()
      await pool.end()
    },
  }
}
