import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { cli, collect, count, envOf, isolatedConfig, log, produceRaw, sleep } from '../helpers.ts'
import { station, topicFor } from '../plant.ts'

describe('the ETL against the real broker and database', () => {
  it('loads N produced readings as exactly N rows, rounded and stamped, served in the reference shape', async (t) => {
    const { config, pool } = await isolatedConfig(t, {
      simCount: 2000,
      simSensorsPerStation: 3,
      simFaultRate: 0.02,
    })
    const produced = await runSimulator(config, log)
    assert.equal(produced.produced, 2000)

    const summary = await runBounded(config, pool, log)
    assert.equal(summary.status, 'ok')
    assert.equal(summary.loaded, 2000)
    assert.equal(summary.rejected, 0)
    assert.equal(summary.partitions.length, 4 * config.topicPartitions)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 2000)
    assert.equal(
      await count(
        pool,
        'SELECT count(DISTINCT (source_topic, source_partition, source_offset)) AS n FROM sensor_data',
      ),
      2000,
    )
    assert.equal(await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE data ? 'processed_at'`), 2000)

    // Every numeric field is rounded to its catalog precision.
    const { rows } = await pool.query<{ station: string; data: Record<string, unknown> }>(
      'SELECT station, data FROM sensor_data',
    )
    for (const { station: id, data } of rows) {
      for (const m of station(id).measurements) {
        if (m.type !== 'number' && m.type !== 'integer') continue
        const v = data[m.name] as number
        const decimals = m.type === 'number' ? m.decimals : 0
        assert.equal(v, Number(v.toFixed(decimals)), `${id}.${m.name}=${v}`)
      }
    }

    // A second bounded run finds nothing new.
    const again = await runBounded(config, pool, log)
    assert.equal(again.loaded, 0)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 2000)

    // The API serves them in the reference shape, newest first.
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    const res = await app.inject({ url: '/sensor-data?limit=5&station=paint' })
    assert.equal(res.statusCode, 200)
    const body = res.json() as {
      id: number
      station: string
      data: Record<string, unknown>
      created_at: string
    }[]
    assert.equal(body.length, 5)
    assert.deepEqual(Object.keys(body[0]!).sort(), ['created_at', 'data', 'id', 'station'])
    assert.ok(body.every((r) => r.station === 'paint' && typeof r.data.processed_at === 'string'))
    assert.ok(
      body.every((r, i) => i === 0 || r.id < body[i - 1]!.id),
      'newest first',
    )
    assert.ok(!Number.isNaN(Date.parse(body[0]!.created_at)))
  })

  it('goes on past malformed messages, loading the valid ones and dead-lettering the rest', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    const topic = topicFor('paint', config.topicPrefix)
    const good = (i: number) =>
      JSON.stringify({
        station: 'paint',
        timestamp: Date.now() / 1000 - 60 + i,
        booth_temp: 20,
        booth_humidity: 60,
        paint_thickness: 1.1,
      })
    await produceRaw(config, [
      { topic, key: 'p1', value: good(1) },
      { topic, key: 'p1', value: '{"station": "paint", "timest' },
      { topic, key: 'p1', value: good(2) },
      { topic, key: 'p1', value: '[1,2,3]' },
      { topic, key: 'p1', value: Buffer.from([0xff, 0xfe, 0x00, 0x41]) },
      { topic, key: null, value: JSON.stringify({ station: 'battery', timestamp: 1 }) },
      { topic, key: 'p1', value: good(3) },
    ])
    const summary = await runBounded(config, pool, log)
    assert.equal(summary.loaded, 3)
    assert.equal(summary.rejected, 4)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 3)
    const { rows } = await pool.query<{ reason_code: string; offset: number }>(
      'SELECT reason_code, "offset" FROM dead_letters ORDER BY "offset"',
    )
    assert.deepEqual(
      rows.map((r) => [r.offset, r.reason_code]),
      [
        [1, 'INVALID_JSON'],
        [3, 'NOT_AN_OBJECT'],
        [4, 'INVALID_UTF8'],
        [5, 'STATION_TOPIC_MISMATCH'],
      ],
    )
    const raw = await pool.query<{ message_value: Buffer }>(
      'SELECT message_value FROM dead_letters WHERE "offset" = 4',
    )
    assert.deepEqual(
      raw.rows[0]!.message_value,
      Buffer.from([0xff, 0xfe, 0x00, 0x41]),
      'raw bytes kept as they were',
    )
  })

  it('loads exactly N rows when `etl run` is killed with SIGKILL between batches and run again', async (t) => {
    const n = 20_000
    const { config, pool } = await isolatedConfig(t, { simCount: n, simSensorsPerStation: 5 })
    await runSimulator(config, log)
    const env = { ...envOf(config), EVF_ETL_BATCH_SIZE: '500', EVF_ETL_LINGER_MS: '10' }

    let kills = 0
    for (let attempt = 0; attempt < 30; attempt++) {
      const before = await count(pool, 'SELECT count(*) AS n FROM sensor_data')
      if (before === n) break
      const child = cli(['etl', 'run'], env)
      const done = collect(child)
      // Kill it once some rows have landed (or let it finish on the last attempts).
      if (attempt < 5) {
        const deadline = Date.now() + 20_000
        while (
          Date.now() < deadline &&
          (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) <= before
        ) {
          await sleep(20)
        }
        child.kill('SIGKILL')
        kills++
      }
      const result = await done
      if (result.code !== null && result.code !== 0) assert.fail(`etl run failed: ${result.stderr}`)
    }
    assert.ok(kills >= 3, `killed ${kills} times`)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), n)
    assert.equal(
      await count(
        pool,
        'SELECT count(DISTINCT (source_topic, source_partition, source_offset)) AS n FROM sensor_data',
      ),
      n,
    )
    const offsets = await count(pool, 'SELECT sum(next_offset) AS n FROM etl_offsets')
    assert.equal(offsets, n, 'stored offsets cover exactly what was produced')
  })

  it('prints a JSON summary from `etl run` and exits 0', async (t) => {
    const { config } = await isolatedConfig(t, { simCount: 100 })
    await runSimulator(config, log)
    const result = await collect(cli(['etl', 'run'], envOf(config)))
    assert.equal(result.code, 0, result.stderr)
    const summary = JSON.parse(result.stdout)
    assert.equal(summary.loaded, 100)
    assert.equal(summary.mode, 'bounded')
    assert.ok(summary.partitions.every((p: { from: string; to: string }) => BigInt(p.to) >= BigInt(p.from)))
  })
})
