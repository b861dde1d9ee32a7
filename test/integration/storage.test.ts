import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import { maintain } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { provisionRoleLogins } from '../../src/services/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { count, isolatedConfig, log } from '../helpers.ts'
import { station as plantStation, stationIds as stationNames } from '../plant.ts'

const DAY = 86_400

/** Readings in the reference shape at given epoch seconds (all fields in range). */
function paintAt(ts: number, thickness = 1.2) {
  return {
    station: 'paint',
    timestamp: ts,
    booth_temp: 22.04,
    booth_humidity: 55,
    paint_thickness: thickness,
  }
}

describe('time-series storage', () => {
  it('puts readings in daily partitions, keeps the rollups equal to the rows, and drops old days by retention', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 600, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    // Readings 3 and 10 days old (within the ETL's 30-day age limit) reach partitions made on demand.
    const now = Date.now() / 1000
    const { produceRaw } = await import('../helpers.ts')
    await produceRaw(config, [
      {
        topic: `${config.topicPrefix}paint`,
        key: 'old-1',
        value: JSON.stringify(paintAt(now - 3 * DAY, 1.1)),
      },
      {
        topic: `${config.topicPrefix}paint`,
        key: 'old-2',
        value: JSON.stringify(paintAt(now - 10 * DAY, 1.3)),
      },
    ])
    const summary = await runBounded(config, pool, log)
    assert.equal(summary.loaded, 602)

    const parts = await pool.query<{ name: string; n: number }>(
      `SELECT c.relname AS name, (SELECT count(*) AS n FROM sensor_data s WHERE s.tableoid = c.oid)::int AS n
       FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sensor_data'::regclass`,
    )
    const day = (ts: number) => new Date(ts * 1000).toISOString().slice(0, 10).replaceAll('-', '')
    const byName = new Map(parts.rows.map((r) => [r.name, r.n]))
    assert.equal(
      byName.get(`sensor_data_${day(now - 10 * DAY)}`),
      1,
      'the 10-day-old reading has its own partition',
    )
    assert.equal(byName.get(`sensor_data_${day(now - 3 * DAY)}`), 1)

    // The rollups kept by the ETL equal a rebuild from the rows: nothing missed, nothing doubled.
    const snapshot = async (table: string) =>
      (
        await pool.query(
          `SELECT station, field, category, bucket, n, round(sum::numeric, 6) AS sum, round(sumsq::numeric, 4) AS sumsq, min, max
           FROM ${table} ORDER BY 1, 2, 3, 4`,
        )
      ).rows
    const kept1m = await snapshot('rollup_1m')
    const kept1h = await snapshot('rollup_1h')
    assert.ok(kept1m.length > 0)
    assert.equal(
      kept1m
        .filter((r) => r.station === 'paint' && r.field === 'paint_thickness')
        .reduce((n, r) => n + Number(r.n), 0),
      await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE station = 'paint'`),
    )
    await pool.query(`SELECT rollups_rebuild(now() - interval '40 days', now() + interval '1 day')`)
    assert.deepEqual(await snapshot('rollup_1m'), kept1m)
    assert.deepEqual(await snapshot('rollup_1h'), kept1h)

    // Retention: 7 days drops the 10-day-old partition (and its minute rollups), keeps the rest.
    const partitionCount = () =>
      count(pool, `SELECT count(*) AS n FROM pg_inherits WHERE inhparent = 'sensor_data'::regclass`)
    const before = await partitionCount()
    const m = await maintain(pool, 7)
    assert.ok(m.partitionsDropped.includes(`sensor_data_${day(now - 10 * DAY)}`), String(m.partitionsDropped))
    assert.ok(m.partitionsDropped.every((name) => name < `sensor_data_${day(now - 7 * DAY)}`))
    // What it reports is what it did: the days ahead it made, less the days it dropped.
    assert.ok(m.partitionsCreated > 0, 'the coming days had no partition yet')
    assert.equal(await partitionCount(), before + m.partitionsCreated - m.partitionsDropped.length)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 601)
    assert.equal(
      await count(pool, `SELECT count(*) AS n FROM rollup_1m WHERE bucket < now() - interval '9 days'`),
      0,
    )
    assert.ok(
      (await count(pool, `SELECT count(*) AS n FROM rollup_1h WHERE bucket < now() - interval '9 days'`)) > 0,
    )
    // A late reading for a day retention dropped: the ETL (which saw that day before) makes
    // the partition again rather than failing the batch.
    await produceRaw(config, [
      {
        topic: `${config.topicPrefix}paint`,
        key: 'late',
        value: JSON.stringify(paintAt(now - 10 * DAY, 1.25)),
      },
    ])
    assert.equal((await runBounded(config, pool, log)).loaded, 1)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 602)
    // Partitions exist ahead, so tomorrow's first reading never waits for one.
    const ahead = day(now + 7 * DAY)
    assert.equal(
      await count(pool, `SELECT count(*) AS n FROM pg_class WHERE relname = $1`, [`sensor_data_${ahead}`]),
      1,
    )
  })

  it('serves typed BI views for every station, with units in the column names', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 200, simSensorsPerStation: 1 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { NUMERIC, INT4, TEXT, BOOL, TIMESTAMPTZ } = pg.types.builtins
    for (const station of stationNames) {
      const res = await pool.query(`SELECT * FROM bi.${station}_readings LIMIT 5`)
      assert.ok(res.rows.length > 0, station)
      const types = new Map(res.fields.map((f) => [f.name, f.dataTypeID]))
      assert.equal(types.get('reading_time'), TIMESTAMPTZ)
      for (const f of plantStation(station).measurements) {
        const { name, column: col } = f
        const want = f.type === 'enum' ? TEXT : f.type === 'integer' ? INT4 : NUMERIC
        assert.equal(types.get(col), want, `${station}.${col}`)
        if (f.type !== 'enum') assert.equal(types.get(`${name}_in_spec`), BOOL, `${station}.${name}_in_spec`)
        for (const row of res.rows) assert.notEqual(row[col], null, `${station}.${col} has a value`)
      }
    }
    assert.ok(
      (await pool.query('SELECT * FROM bi.paint_readings')).fields.some(
        (f) => f.name === 'paint_thickness_mil',
      ),
    )
    const comment = await pool.query<{ c: string }>(
      `SELECT col_description('bi.chassis_readings'::regclass, attnum) AS c FROM pg_attribute
       WHERE attrelid = 'bi.chassis_readings'::regclass AND attname = 'bolt_torque_nm'`,
    )
    assert.match(comment.rows[0]!.c, /N·m.*180…220/)
    const rollup = await pool.query(
      `SELECT * FROM bi.rollup_1h WHERE station = 'paint' AND field = 'paint_thickness'`,
    )
    assert.ok(rollup.rows.length > 0 && rollup.rows[0].unit === 'mil' && rollup.rows[0].mean > 0)
  })

  it('gives each role only its privileges: the API and BI roles cannot write, BI reads only the views', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 40, simSensorsPerStation: 1 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const dir = mkdtempSync(join(tmpdir(), 'evf-roles-'))
    t.after(() => rmSync(dir, { recursive: true, force: true }))
    const urls = await provisionRoleLogins(config.databaseUrl, dir)
    const as = async (url: string, sql: string) => {
      const c = new pg.Client({ connectionString: url })
      await c.connect()
      try {
        return await c.query(sql)
      } finally {
        await c.end()
      }
    }
    const denied = async (url: string, sql: string) =>
      assert.rejects(as(url, sql), (e: { code?: string }) => e.code === '42501', `should be denied: ${sql}`)

    // API: reads what it serves, writes nothing.
    assert.ok((await as(urls.evf_api, 'SELECT count(*) AS n FROM sensor_data')).rows[0].n > 0)
    await denied(
      urls.evf_api,
      `INSERT INTO sensor_data (station, data, reading_time, source_topic, source_partition, source_offset) VALUES ('paint', '{}', now(), 'x', 0, 0)`,
    )
    await denied(urls.evf_api, 'DELETE FROM sensor_data')
    await denied(urls.evf_api, 'UPDATE etl_offsets SET next_offset = 0')
    await denied(urls.evf_api, 'TRUNCATE dead_letters')
    await denied(urls.evf_api, 'CREATE TABLE public.intruder (x int)')
    // BI: the views of schema bi, nothing else.
    assert.ok((await as(urls.evf_bi, 'SELECT count(*) AS n FROM bi.paint_readings')).rows[0].n > 0)
    await denied(urls.evf_bi, 'SELECT count(*) AS n FROM public.sensor_data')
    await denied(urls.evf_bi, 'SELECT * FROM public.dead_letters')
    // ETL: appends and moves offsets, never deletes or alters.
    await denied(urls.evf_etl, 'DELETE FROM sensor_data')
    await denied(urls.evf_etl, 'DROP TABLE dead_letters')
    // …and it loads: a bounded run as evf_etl works end to end.
    const etlPool = (await import('../../src/db/index.ts')).createPool(urls.evf_etl, { max: 2 })
    t.after(() => etlPool.end())
    await runSimulator({ ...config, simCount: 20 }, log)
    const s = await runBounded({ ...config, databaseUrl: urls.evf_etl }, etlPool, log)
    assert.equal(s.loaded, 20)
  })
})
