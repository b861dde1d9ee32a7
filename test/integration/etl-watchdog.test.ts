import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import { childPids } from '../../src/shared/process.ts'
import { cli, collect, count, envOf, isolatedConfig, killTree, waitFor } from '../helpers.ts'

const STALL_SEC = 5

describe('the ETL watchdog', () => {
  it('sees a frozen worker (SIGSTOP): logs an error, /ready 503 and evf_etl_stalled 1, restarts it, and loses or doubles nothing', async (t) => {
    const { config, pool } = await isolatedConfig(t, { etlStallSec: STALL_SEC })
    const env = { ...envOf(config), EVF_ETL_STALL_SEC: String(STALL_SEC), EVF_LOG_LEVEL: 'info' }
    const app = await buildApp({ pool, auth: 'off', logger: false, config: { etlStallSec: STALL_SEC } })
    t.after(() => app.close())

    const etl = cli(['etl', 'follow'], env)
    const etlExit = collect(etl)
    t.after(() => killTree(etl))
    // 1,000 readings/s for 45 s: enough to be behind at every moment the worker is frozen.
    const sim = cli(['simulate'], {
      ...env,
      EVF_SIM_SENSORS_PER_STATION: '25',
      EVF_SIM_INTERVAL_MS: '100',
      EVF_SIM_DURATION_SEC: '45',
    })
    t.after(() => sim.kill('SIGKILL'))
    const simExit = collect(sim)
    const rows = () => count(pool, 'SELECT count(*) AS n FROM sensor_data')
    await waitFor('the first commits', async () => (await rows()) > 2000, 60_000)
    const ready = async () => {
      const r = await app.inject('/ready')
      return { status: r.statusCode, body: r.json() as { etl: { stalled: boolean } } }
    }
    assert.equal((await ready()).status, 200, 'ready while it commits')

    const [worker] = childPids(etl.pid!)
    assert.ok(worker, 'etl follow runs its worker as a child process')
    process.kill(worker, 'SIGSTOP')
    const frozenAt = await rows()

    await waitFor('/ready to say stalled', async () => (await ready()).status === 503, 60_000)
    const stalled = await ready()
    assert.equal(stalled.body.etl.stalled, true)
    const metrics = (await app.inject('/metrics')).body
    assert.match(metrics, /^evf_etl_stalled 1$/m)
    const status = (await app.inject('/pipeline/status')).json() as { etl: { stalled: boolean } }
    assert.equal(status.etl.stalled, true)

    // Recovery: the frozen worker is killed and a new one loads.
    await waitFor('a new worker', async () => childPids(etl.pid!).some((p) => p !== worker), 60_000)
    await waitFor('commits again', async () => (await rows()) > frozenAt + 2000, 60_000)
    await waitFor('/ready again', async () => (await ready()).status === 200, 60_000)
    assert.match((await app.inject('/metrics')).body, /^evf_etl_stalled 0$/m)

    assert.equal((await simExit).code, 0)
    const produced = Number(/"produced":(\d+)/.exec((await simExit).stderr)?.[1] ?? 0)
    assert.ok(produced > 30_000, `the simulator reports ${produced} readings`)
    await waitFor(
      'every reading loaded',
      async () =>
        (await count(
          pool,
          'SELECT (SELECT count(*) FROM sensor_data) + (SELECT count(*) FROM dead_letters) AS n',
        )) >= produced,
      120_000,
    )
    assert.equal(
      await count(
        pool,
        'SELECT (SELECT count(*) FROM sensor_data) + (SELECT count(*) FROM dead_letters) AS n',
      ),
      produced,
      'each reading once',
    )
    assert.equal(
      await count(pool, "SELECT count(DISTINCT (data->>'sensor_id', data->>'seq')) AS n FROM sensor_data"),
      await rows(),
      'no reading twice',
    )

    etl.kill('SIGTERM')
    const out = await etlExit
    const logs = out.stdout + out.stderr
    assert.match(logs, /"level":50[^\n]*ETL stalled: messages wait and nothing was committed/)
    assert.match(logs, /"level":50[^\n]*ETL worker exited; starting it again/)
    assert.match(logs, /ETL committing again/)
  })
})
