/**
 * bench:scale's part B: the API (`node dist/cli.js api`, its cache off) reading from the primary,
 * then from a hot standby of it (DATABASE_READ_URL), driven by autocannon; the CPU of both
 * PostgreSQL servers from /proc.
 */
import { join } from 'node:path'
import { createPool } from '../src/db/index.ts'
import { startStandby } from '../src/services/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { sleep } from '../src/shared/time.ts'
import {
  cleanupNow,
  envInt,
  fmt,
  invalid,
  type LoadOptions,
  type Measurement,
  measure,
  onCleanup,
  progress,
  requirePid,
  seconds,
  startOurApi,
  treesTotal,
} from './harness/index.ts'
import { dataDir } from './scale-kafka.ts'

export const LOAD: LoadOptions = {
  connections: 16,
  duration: envInt('BENCH_SCALE_API_SECONDS', 10),
  warmup: 2,
  quietWait: 30,
}
export const API_PATH = '/sensor-data?limit=100&station=paint'
const log = createLogger('bench', 'warn')

export interface ApiRun {
  readsFrom: string
  m: Measurement
  primaryCores: number
  standbyCores: number
  /** cores used by anything else on the machine meanwhile */
  others: number
}

export async function apiRuns(primaryUrl: string, primaryPid: number): Promise<ApiRun[]> {
  const t0 = performance.now()
  progress('PostgreSQL standby: cloning the primary (low-level backup API) and streaming…')
  const standby = await startStandby({ primaryUrl, dataDir, port: 0, log })
  const stopStandby = onCleanup('PostgreSQL standby', () => standby.stop())
  const standbyPid = requirePid(join(dataDir, 'postgres-standby', 'postmaster.pid'))
  const primary = createPool(primaryUrl, { max: 1 })
  const replica = createPool(standby.url, { max: 1 })
  try {
    const count = async (pool: typeof primary) =>
      (await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sensor_data')).rows[0]!.n
    const want = await count(primary)
    for (let waited = 0; (await count(replica)) !== want; waited += 200) {
      if (waited > 60_000) throw new Error('the standby did not catch up with the primary in 60 s')
      await sleep(200)
    }
    progress(`PostgreSQL standby on port ${standby.port} serves ${fmt(want)} rows after ${seconds(t0)}`)
    const runs: ApiRun[] = []
    for (const [readsFrom, env] of [
      ['primary', {}],
      ['standby', { DATABASE_READ_URL: standby.url }],
    ] as const) {
      // EVF_API_CACHE_MS=0: every request reaches PostgreSQL.
      const api = await startOurApi({
        databaseUrl: primaryUrl,
        logDir: join(dataDir, 'logs'),
        env: { EVF_API_CACHE_MS: '0', ...env },
        name: `scale-api-${readsFrom}`,
      })
      // Both servers' CPU, exited backends and autovacuum workers included (treesTotal).
      let at = 0
      let primary0 = 0
      let standby0 = 0
      let primaryCores = 0
      let standbyCores = 0
      try {
        const m = await measure(
          {
            system: 'ours, no cache',
            label: `reads from the ${readsFrom}`,
            base: api.base,
            path: API_PATH,
            headers: api.headers,
            pid: api.pid,
            postmaster: primaryPid,
          },
          LOAD,
          {
            window: {
              begin: async () => {
                primary0 = treesTotal([primaryPid])
                standby0 = treesTotal([standbyPid])
                at = performance.now()
              },
              end: async () => {
                const elapsed = (performance.now() - at) / 1000
                primaryCores = (treesTotal([primaryPid]) - primary0) / elapsed
                standbyCores = (treesTotal([standbyPid]) - standby0) / elapsed
              },
            },
          },
        )
        if (invalid(m))
          throw new Error(
            `the API reading from the ${readsFrom} failed: ${m.failure ?? `${m.result?.non2xx} non-2xx, ${m.result?.errors} errors`}`,
          )
        // measure() counts the standby as another process: it is ours.
        const others = Math.max(0, m.cpu.other + m.cpu.postgres - primaryCores - standbyCores)
        runs.push({ readsFrom, m, primaryCores, standbyCores, others })
      } finally {
        await api.stop()
      }
    }
    return runs
  } finally {
    await replica.end()
    await cleanupNow(stopStandby)
    // No standby streams from it any more: the primary need not keep WAL for it.
    await primary
      .query(
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = 'evf_standby'`,
      )
      .catch(() => undefined)
    await primary.end()
  }
}
