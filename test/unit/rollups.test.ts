import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { RollupBuilder } from '../../src/etl/rollups.ts'
import { plant } from '../plant.ts'

describe('RollupBuilder', () => {
  it('aggregates per station, field, category and minute, and sums the hours from the minutes', () => {
    const b = new RollupBuilder(plant)
    const t0 = 1_795_910_400 // a whole hour
    const thickness = [1.1, 1.2, 1.3, 1.25]
    for (const [i, v] of thickness.entries()) {
      b.add('paint', t0 + i * 30, { booth_temp: 20 + i, booth_humidity: 55, paint_thickness: v })
    }
    b.add('quality', t0 + 5, { defect_count: 0, inspection_result: 'PASS' })
    b.add('quality', t0 + 65, { defect_count: 3, inspection_result: 'FAIL' })
    b.add('quality', t0 + 3700, { defect_count: 1, inspection_result: 'PASS' })
    const { minute, hour } = b.build()

    const m = minute.filter((a) => a.station === 'paint' && a.field === 'paint_thickness')
    assert.deepEqual(
      m.map((a) => [a.bucket - t0, a.n, a.min, a.max]),
      [
        [0, 2, 1.1, 1.2],
        [60, 2, 1.25, 1.3],
      ],
    )
    const h = hour.find((a) => a.station === 'paint' && a.field === 'paint_thickness')!
    assert.equal(h.n, 4)
    assert.ok(Math.abs((h.sum ?? 0) - 4.85) < 1e-12)
    assert.ok(Math.abs((h.sumsq ?? 0) - thickness.reduce((s, v) => s + v * v, 0)) < 1e-12)
    assert.deepEqual([h.min, h.max], [1.1, 1.3])

    const results = hour.filter((a) => a.field === 'inspection_result')
    assert.deepEqual(
      results.map((a) => [a.category, a.bucket - t0, a.n, a.sum]),
      [
        ['FAIL', 0, 1, null],
        ['PASS', 0, 1, null],
        ['PASS', 3600, 1, null],
      ],
    )
    // One order (station, field, category, bucket) for every worker, so merges never deadlock.
    const keys = minute.map((a) => `${a.station}|${a.field}|${a.category}|${String(a.bucket).padStart(12)}`)
    assert.deepEqual(
      keys,
      [...keys].sort((x, y) => x.localeCompare(y)),
    )
  })
})
