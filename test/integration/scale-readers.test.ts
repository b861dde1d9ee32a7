/**
 * Readers that scale (issue 14): several API processes on one database, and an API that reads
 * from a PostgreSQL hot standby kept by streaming replication.
 */
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import { issueToken } from '../../src/api/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { freePort, startStandby } from '../../src/services/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { cli, isolatedConfig, log, waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

/** `evf api` as its own process on a free port; resolves once /health answers. */
async function apiProcess(t: { after: (fn: () => void) => void }, env: Record<string, string>) {
  const port = await freePort()
  const child = cli(['api'], { EVF_API_PORT: String(port), EVF_LOG_LEVEL: 'warn', ...env })
  t.after(() => child.kill('SIGTERM'))
  const base = `http://127.0.0.1:${port}`
  await waitFor(
    'the API',
    async () => (await fetch(`${base}/health`).catch(() => undefined))?.ok === true,
    30_000,
  )
  return base
}

describe('readers that scale', () => {
  it('two API processes on one database both serve a commit’s readings: each cache is emptied by the NOTIFY', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 40, simSensorsPerStation: 1 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { token } = await issueToken(pool, 'api', 'replicas', ['read'])
    rememberSecret(token)
    // A cache that only a commit's NOTIFY can empty within the test: a minute's TTL.
    const env = { DATABASE_URL: config.databaseUrl, EVF_API_CACHE_MS: '60000' }
    const apis = [await apiProcess(t, env), await apiProcess(t, env)]
    const count = async (base: string) => {
      const res = await fetch(`${base}/sensor-data?limit=1000`, {
        headers: { authorization: `Bearer ${token}` },
      })
      return { n: ((await res.json()) as unknown[]).length, cache: res.headers.get('x-cache') }
    }
    for (const base of apis) {
      assert.equal((await count(base)).n, 40)
      await waitFor('a cached answer', async () => (await count(base)).cache === 'hit', 10_000)
    }
    await runSimulator({ ...config, simCount: 20 }, log)
    await runBounded(config, pool, log)
    for (const base of apis) {
      await waitFor(`${base} to serve the new commit`, async () => (await count(base)).n === 60, 5_000)
    }
  })

  it('serves from a hot standby: a reading loaded on the primary is read back through the replica', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 40, simSensorsPerStation: 1 })
    const primaryUrl = process.env.EVF_TEST_DATABASE_URL!
    const dataDir = mkdtempSync(join(tmpdir(), 'evf-standby-'))
    chmodSync(dataDir, 0o755) // as root, PostgreSQL runs as the postgres user, who must reach it
    const standby = await startStandby({ primaryUrl, dataDir, port: 0, log })
    t.after(async () => {
      await standby.stop()
      const admin = new pg.Client({ connectionString: primaryUrl })
      await admin.connect()
      await admin.query("SELECT pg_drop_replication_slot('evf_standby')").catch(() => undefined)
      await admin.end()
    })
    const readUrl = new URL(config.databaseUrl)
    readUrl.port = String(standby.port)
    // A connection per question: replaying the primary's DDL may end an idle standby session.
    const onReplica = async (sql: string) => {
      const c = new pg.Client({ connectionString: readUrl.toString() })
      c.on('error', () => undefined)
      await c.connect()
      try {
        return (await c.query(sql)).rows[0]
      } finally {
        await c.end().catch(() => undefined)
      }
    }
    assert.equal((await onReplica('SELECT pg_is_in_recovery() AS r')).r, true, 'a standby')

    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { token } = await issueToken(pool, 'api', 'standby', ['read', 'metrics'])
    rememberSecret(token)
    const base = await apiProcess(t, {
      DATABASE_URL: config.databaseUrl,
      DATABASE_READ_URL: readUrl.toString(),
    })
    const get = (path: string) => fetch(`${base}${path}`, { headers: { authorization: `Bearer ${token}` } })
    const newest = await pool.query<{ id: number }>('SELECT max(id)::int AS id FROM sensor_data')
    await waitFor(
      'the newest reading through the replica',
      async () =>
        ((await (await get('/sensor-data?limit=1')).json()) as { id: number }[])[0]?.id ===
        newest.rows[0]!.id,
      10_000,
    )
    // The reads came from the standby, and its replay lag is reported.
    const reads = await onReplica(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'evf-api-reads'",
    )
    assert.ok(reads.n >= 1, 'the API holds connections to the standby')
    const status = (await (await get('/pipeline/status')).json()) as {
      replica: { standby: boolean; lag_seconds: number }
    }
    assert.equal(status.replica.standby, true)
    assert.ok(status.replica.lag_seconds >= 0 && status.replica.lag_seconds < 5)
    assert.match(await (await get('/metrics')).text(), /evf_replica_lag_seconds \d/)
  })
})
