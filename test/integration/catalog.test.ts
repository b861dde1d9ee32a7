import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { stringify } from 'yaml'
import { applyCatalog, applyCatalogFile, loadCatalog, withClient } from '../../src/db/index.ts'
import { retryDeadLetters, runBounded } from '../../src/etl/index.ts'
import { createAdmin, ensureTopics } from '../../src/kafka/index.ts'
import { cli, collect, count, envOf, isolatedConfig, log, produceRaw } from '../helpers.ts'
import { plant, withWelding } from '../plant.ts'

const weldReading = (ts: number, current = 10.123) =>
  JSON.stringify({
    station: 'welding',
    sensor_id: 'weld-1',
    timestamp: ts,
    weld_current: current,
    electrode_force: 4.2,
    seam_ok: true,
  })

describe('the catalog in PostgreSQL', () => {
  it('re-drives the dead letters of an unknown station once the catalog learns it', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    // A new machine publishes before anyone told the catalog: its topic is under the prefix.
    const topic = `${config.topicPrefix}welding`
    const admin = createAdmin(config, 'evf-test-admin')
    await ensureTopics(admin, [topic], 1, log)
    await admin.close()
    const now = Date.now() / 1000
    await produceRaw(config, [
      { topic, key: 'weld-1', value: weldReading(now - 2) },
      { topic, key: 'weld-1', value: weldReading(now - 1, 12.5) },
    ])
    const first = await runBounded(config, pool, log)
    assert.equal(first.rejected, 2)
    assert.equal(
      await count(pool, `SELECT count(*) AS n FROM dead_letters WHERE reason_code = 'UNKNOWN_STATION'`),
      2,
    )

    const applied = await withClient(pool, (c) => applyCatalog(c, withWelding(), { source: 'test' }))
    assert.equal(applied.version, 2)
    assert.deepEqual(applied.diff.added, ['welding'])
    const redriven = await retryDeadLetters(config, pool, { reason: 'UNKNOWN_STATION' })
    assert.equal(redriven.loaded, 2)
    const rows = await pool.query<{ data: { weld_current: number; out_of_spec?: string[] } }>(
      `SELECT data FROM sensor_data WHERE station = 'welding' ORDER BY reading_time`,
    )
    assert.deepEqual(
      rows.rows.map((r) => [r.data.weld_current, r.data.out_of_spec ?? []]),
      [
        [10.12, []],
        [12.5, ['weld_current']],
      ],
    )
    assert.equal(await count(pool, `SELECT count(*) AS n FROM bi.welding_readings`), 2)
    // Its rollups were merged with the re-drive.
    assert.equal(
      await count(
        pool,
        `SELECT sum(n) AS n FROM rollup_1m WHERE station = 'welding' AND field = 'weld_current'`,
      ),
      2,
    )
  })

  it('versions the limits: a reading is judged by the limits of its time, before and after a change', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    await withClient(pool, (c) => applyCatalog(c, withWelding(), { source: 'test' }))
    const topic = `${config.topicPrefix}welding`
    const admin = createAdmin(config, 'evf-test-admin')
    await ensureTopics(admin, [topic], 1, log)
    await admin.close()
    const tightened = withWelding()
    Object.assign(tightened.lines[0]!.stations[4]!.measurements.weld_current!, {
      spec: { lsl: 8, target: 9, usl: 10 },
    })
    const before = Date.now() / 1000 - 60
    const v3 = await withClient(pool, (c) => applyCatalog(c, tightened, { source: 'test' }))
    assert.deepEqual(v3.diff.limits, [
      { station: 'welding', measurement: 'weld_current', lsl: 8, target: 9, usl: 10 },
    ])
    // 11 kA: within yesterday's limits (a late reading from before the change), above today's.
    await produceRaw(config, [
      { topic, key: 'weld-1', value: weldReading(before, 11) },
      { topic, key: 'weld-1', value: weldReading(Date.now() / 1000, 11) },
    ])
    await runBounded(config, pool, log)
    const verdicts = await pool.query<{ flagged: boolean }>(
      `SELECT data->'out_of_spec' ? 'weld_current' AS flagged FROM sensor_data WHERE station = 'welding' ORDER BY reading_time`,
    )
    assert.deepEqual(
      verdicts.rows.map((r) => r.flagged),
      [null, true],
    )
    const limits = await pool.query<{ usl: number; valid_to: Date | null }>(
      `SELECT usl, valid_to FROM bi.catalog_limits WHERE station = 'welding' AND field = 'weld_current' ORDER BY valid_from`,
    )
    assert.deepEqual(
      limits.rows.map((r) => [r.usl, r.valid_to === null]),
      [
        [12, false],
        [10, true],
      ],
    )
    // The file's order of stations and measurements, as read back (the panels, the counts follow it).
    const stored = (await loadCatalog(pool))!
    assert.deepEqual(
      stored.stations.map((s) => `${s.id}:${s.measurements.map((m) => m.name).join(',')}`),
      plant.stations
        .map((s) => `${s.id}:${s.measurements.map((m) => m.name).join(',')}`)
        .concat('welding:weld_current,electrode_force,seam_ok'),
    )
    // Applying it again changes nothing.
    const again = await withClient(pool, (c) => applyCatalog(c, tightened, { source: 'test' }))
    assert.equal(again.changed, false)
    assert.equal(again.version, 3)
  })

  it('keeps a retired station: queryable, its view kept, its late readings loaded, new ones refused', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    await withClient(pool, (c) => applyCatalog(c, withWelding(), { source: 'test' }))
    const topic = `${config.topicPrefix}welding`
    const admin = createAdmin(config, 'evf-test-admin')
    await ensureTopics(admin, [topic], 1, log)
    await admin.close()
    await produceRaw(config, [{ topic, key: 'weld-1', value: weldReading(Date.now() / 1000 - 30) }])
    await runBounded(config, pool, log)
    const retired = await withClient(pool, (c) =>
      applyCatalog(c, structuredClone(plant.document), { source: 'test' }),
    )
    assert.deepEqual(retired.diff.retired, ['welding'])
    // One taken before the retirement and still on its way is loaded; one taken after is refused.
    await produceRaw(config, [
      { topic, key: 'weld-1', value: weldReading(Date.now() / 1000 - 20) },
      { topic, key: 'weld-1', value: weldReading(Date.now() / 1000 + 5) },
    ])
    const run = await runBounded(config, pool, log)
    assert.deepEqual([run.loaded, run.rejected], [1, 1])
    assert.equal(await count(pool, `SELECT count(*) AS n FROM bi.welding_readings`), 2)
    const catalog = (await loadCatalog(pool))!
    assert.equal(catalog.station('welding'), undefined)
    assert.equal(catalog.known('welding')?.retired?.version, 3)
    const reason = await pool.query<{ reason: string }>(
      `SELECT reason FROM dead_letters WHERE reason_code = 'UNKNOWN_STATION'`,
    )
    assert.match(reason.rows[0]!.reason, /retired in catalog version 3/)
  })

  it('applies EVF_CATALOG at start only when that file changed, and keeps a version applied from elsewhere', async (t) => {
    const { pool } = await isolatedConfig(t)
    const dir = mkdtempSync(join(tmpdir(), 'evf-catalog-'))
    const file = join(dir, 'plant.yaml')
    writeFileSync(file, readFileSync(new URL('../../catalog/plant.yaml', import.meta.url)))
    const first = await withClient(pool, (c) => applyCatalogFile(c, file))
    assert.equal(first.changed, true, 'a file never applied: recorded as a version')
    assert.deepEqual(first.diff.added, [], 'with the content in force, it changes nothing')
    const again = await withClient(pool, (c) => applyCatalogFile(c, file))
    assert.equal(again.changed, false, 'unchanged: nothing applied')
    writeFileSync(file, stringify(withWelding()))
    const edited = await withClient(pool, (c) => applyCatalogFile(c, file))
    assert.deepEqual([edited.changed, edited.diff.added], [true, ['welding']])
    // A version applied from another file stays in force across a restart with the old one.
    const other = join(dir, 'other.yaml')
    writeFileSync(other, stringify(structuredClone(plant.document)))
    await withClient(pool, (c) => applyCatalog(c, structuredClone(plant.document), { source: other }))
    const restart = await withClient(pool, (c) => applyCatalogFile(c, file))
    assert.equal(restart.changed, false)
    assert.equal(restart.catalog.station('welding'), undefined)
  })

  it('`evf catalog apply` refuses a bad file with exit 2 and every problem, and applies a good one with its diff', async (t) => {
    const { config } = await isolatedConfig(t)
    const dir = mkdtempSync(join(tmpdir(), 'evf-catalog-'))
    const bad = withWelding()
    Object.assign(bad.lines[0]!.stations[2]!.measurements.booth_temp!, {
      spec: { lsl: 18, target: 22, usl: 21 },
    })
    Object.assign(bad.lines[0]!.stations[4]!.measurements.weld_current!, { unit: 'Amp' })
    writeFileSync(join(dir, 'bad.yaml'), stringify(bad))
    const refused = await collect(cli(['catalog', 'apply', join(dir, 'bad.yaml')], envOf(config)))
    assert.equal(refused.code, 2)
    assert.match(
      refused.stderr,
      /\/lines\/0\/stations\/2\/measurements\/booth_temp\/spec\/usl: must be greater than target 22/,
    )
    assert.match(
      refused.stderr,
      /\/lines\/0\/stations\/4\/measurements\/weld_current\/unit: "Amp" is not a UCUM unit code/,
    )
    const validate = await collect(cli(['catalog', 'validate', join(dir, 'bad.yaml')], {}))
    assert.equal(validate.code, 2)

    writeFileSync(join(dir, 'good.yaml'), stringify(withWelding()))
    const dry = await collect(cli(['catalog', 'apply', '--dry-run', join(dir, 'good.yaml')], envOf(config)))
    assert.equal(dry.code, 0, dry.stderr)
    assert.match(dry.stdout, /^\+ station welding\n(.*\n)*dry run: nothing applied\n$/)
    const good = await collect(cli(['catalog', 'apply', join(dir, 'good.yaml')], envOf(config)))
    assert.equal(good.code, 0, good.stderr)
    assert.match(good.stdout, /\+ station welding\n.*applied as catalog version 2/s)
    const shown = JSON.parse((await collect(cli(['catalog', '--json'], envOf(config)))).stdout)
    assert.equal(shown.version, 2)
    assert.ok(shown.topics.includes(`${config.topicPrefix}welding`), 'its topic is the catalog’s')
  })
})
