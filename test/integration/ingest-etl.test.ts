/**
 * What the ETL does with what `evf ingest` produces, against the real broker and database: a
 * reading its broker redelivered (header evf-redelivered) is loaded only if its natural key —
 * station, sensor, reading time — is new, whether the original is in the same batch or loaded
 * long before, and the rollups count it once; a reading whose source said it is not good is a
 * dead letter with its status.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runBounded } from '../../src/etl/index.ts'
import { count, isolatedConfig, log, produceRaw } from '../helpers.ts'
import { topicFor } from '../plant.ts'

describe('the ETL and device readings', () => {
  it('loads a redelivered reading once, and dead-letters a bad quality with its status', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const topic = topicFor('paint', config.topicPrefix)
    const now = Math.floor(Date.now() / 1000) - 60
    const reading = (sensor: string, ts: number) =>
      JSON.stringify({
        station: 'paint',
        sensor_id: sensor,
        timestamp: ts,
        booth_temp: 22.4,
        booth_humidity: 61,
        paint_thickness: 1.2,
      })
    const device = (sensor: string, ts: number, redelivered = false) => ({
      topic,
      key: sensor,
      value: reading(sensor, ts),
      headers: { 'evf-source': 'mqtt', ...(redelivered ? { 'evf-redelivered': '1' } : {}) },
    })
    // The original and its redelivery in one batch; a redelivery never loaded before is new.
    await produceRaw(config, [
      device('booth-1', now),
      device('booth-1', now + 0.5),
      device('booth-1', now, true),
      device('booth-2', now, true),
      {
        topic,
        key: 'booth-3',
        value: reading('booth-3', now),
        headers: { 'evf-source': 'opcua', 'evf-quality': 'Bad 0x808C0000 BadSensorFailure' },
      },
    ])
    assert.equal((await runBounded(config, pool, log)).status, 'ok')
    // Later, in another batch: the broker redelivers both again.
    await produceRaw(config, [device('booth-1', now, true), device('booth-1', now + 0.5, true)])
    assert.equal((await runBounded(config, pool, log)).status, 'ok')

    const loaded = await pool.query<{ sensor: string; t: number }>(
      `SELECT data->>'sensor_id' AS sensor, extract(epoch FROM reading_time)::float8 AS t
       FROM sensor_data ORDER BY 1, 2`,
    )
    assert.deepEqual(
      loaded.rows.map((r) => [r.sensor, r.t]),
      [
        ['booth-1', now],
        ['booth-1', now + 0.5],
        ['booth-2', now],
      ],
    )
    assert.equal(
      await count(
        pool,
        `SELECT coalesce(sum(n), 0) AS n FROM rollup_1m WHERE station = 'paint' AND field = 'booth_temp'`,
      ),
      3,
    )
    const dead = await pool.query<{ reason_code: string; reason: string }>(
      'SELECT reason_code, reason FROM dead_letters',
    )
    assert.deepEqual(
      dead.rows.map((d) => d.reason_code),
      ['BAD_QUALITY'],
    )
    assert.match(dead.rows[0]!.reason, /BadSensorFailure/)
  })
})
