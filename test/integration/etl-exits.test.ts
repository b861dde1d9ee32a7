import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { errorCodes } from '../../src/errors/index.ts'
import { freePort } from '../../src/services/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { cli, collect, count, envOf, isolatedConfig, log, sleep } from '../helpers.ts'

describe('etl run exit codes', () => {
  it('exits 3 when Kafka is unreachable, 4 when PostgreSQL is, 2 on a bad setting', async (t) => {
    const { config } = await isolatedConfig(t)
    const closed = await freePort()
    const noRetry = { EVF_ETL_RETRY_FOR_SEC: '0' }

    const kafka = await collect(
      cli(['etl', 'run'], { ...envOf(config), ...noRetry, KAFKA_BROKERS: `127.0.0.1:${closed}` }),
    )
    assert.equal(kafka.code, errorCodes.KAFKA_UNREACHABLE.exitCode, kafka.stderr)
    assert.match(kafka.stderr, /KAFKA_UNREACHABLE/)

    const db = await collect(
      cli(['etl', 'run'], {
        ...envOf(config),
        ...noRetry,
        DATABASE_URL: `postgres://postgres:postgres@127.0.0.1:${closed}/x`,
      }),
    )
    assert.equal(db.code, errorCodes.DATABASE_UNREACHABLE.exitCode, db.stderr)
    assert.match(db.stderr, /DATABASE_UNREACHABLE/)

    const bad = await collect(cli(['etl', 'run'], { ...envOf(config), EVF_ETL_BATCH_SIZE: 'lots' }))
    assert.equal(bad.code, errorCodes.CONFIG_INVALID.exitCode)
    assert.match(bad.stderr, /etlBatchSize \(env EVF_ETL_BATCH_SIZE\)/)
  })

  it('on SIGTERM finishes its open batch, exits 8 with the summary so far, and leaves nothing half-written', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 150_000 })
    await runSimulator(config, log)
    const child = cli(['etl', 'run'], { ...envOf(config), EVF_ETL_BATCH_SIZE: '1000' })
    const done = collect(child)
    while ((await count(pool, 'SELECT count(*) AS n FROM sensor_data')) < 5000) await sleep(20)
    child.kill('SIGTERM')
    const result = await done
    assert.equal(result.code, errorCodes.ABORTED.exitCode, result.stderr)
    const summary = JSON.parse(result.stdout)
    assert.equal(summary.status, 'aborted')
    const rows = await count(pool, 'SELECT count(*) AS n FROM sensor_data')
    assert.ok(rows < 150_000, 'stopped before the end')
    assert.equal(summary.loaded, rows, 'the summary counts what was committed')
    assert.equal(
      await count(pool, 'SELECT sum(next_offset) AS n FROM etl_offsets'),
      rows,
      'offsets match the rows',
    )
    const rest = await collect(cli(['etl', 'run'], envOf(config)))
    assert.equal(rest.code, 0)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 150_000)
  })
})
