import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { allTopics, stationForTopic, stationNames, stations, topicFor } from '../../src/catalog/index.ts'
import { PlantSimulator } from '../../src/simulator/index.ts'

describe('the station catalog', () => {
  it('has the four stations of the plant', () => {
    assert.deepEqual([...stationNames].sort(), ['battery', 'chassis', 'paint', 'quality'])
  })

  it('keeps the reference system’s paint and quality fields', () => {
    assert.deepEqual(Object.keys(stations.paint.fields), ['booth_temp', 'booth_humidity', 'paint_thickness'])
    assert.deepEqual(stations.quality.fields.inspection_result.values, ['PASS', 'FAIL', 'REWORK'])
    assert.ok('defect_count' in stations.quality.fields)
  })

  it('puts every spec range inside its plausible range, with a unit and a precision', () => {
    for (const station of Object.values(stations)) {
      for (const [name, field] of Object.entries(station.fields)) {
        if (field.kind === 'enum') continue
        const where = `${station.name}.${name}`
        assert.ok(field.plausible[0] <= field.spec[0] && field.spec[1] <= field.plausible[1], where)
        assert.ok(field.unit.length > 0, where)
        assert.ok(Number.isInteger(field.precision) && field.precision >= 0, where)
      }
    }
  })

  it('maps stations to topics and back', () => {
    for (const s of stationNames) assert.equal(stationForTopic(topicFor(s, 'sensor.'), 'sensor.'), s)
    assert.equal(stationForTopic('sensor.unknown', 'sensor.'), undefined)
    assert.equal(stationForTopic('other.paint', 'sensor.'), undefined)
    assert.equal(allTopics('x.').length, stationNames.length)
  })
})

describe('the plant simulator', () => {
  const make = (seed = 7) =>
    new PlantSimulator({ stations: stationNames, sensorsPerStation: 3, seed, faultRate: 0.05 })

  it('emits the reference message shape with every catalog field, inside plausible ranges', () => {
    const plant = make()
    for (let i = 0; i < 200; i++) {
      for (const r of plant.tick(1_738_433_976_027 + i * 5000)) {
        assert.equal(typeof r.timestamp, 'number')
        assert.ok(r.timestamp > 1e9 && r.timestamp < 1e11, 'timestamp is in epoch seconds')
        for (const [name, field] of Object.entries(stations[r.station].fields)) {
          const v = r[name]
          if (field.kind === 'enum') assert.ok(field.values.includes(v as string), `${name}=${v}`)
          else {
            assert.equal(typeof v, 'number')
            assert.ok(
              (v as number) >= field.plausible[0] && (v as number) <= field.plausible[1],
              `${name}=${v}`,
            )
          }
        }
      }
    }
  })

  it('is reproducible from its seed, and differs with another seed', () => {
    const a = make(1).tick(0)
    assert.deepEqual(make(1).tick(0), a)
    assert.notDeepEqual(make(2).tick(0), a)
  })

  it('produces faults outside the spec limits at about the configured rate', () => {
    const plant = new PlantSimulator({ stations: ['paint'], sensorsPerStation: 10, seed: 3, faultRate: 0.1 })
    let outside = 0
    let total = 0
    for (let i = 0; i < 500; i++) {
      for (const r of plant.tick(i)) {
        total++
        const [lo, hi] = stations.paint.fields.booth_temp.spec
        if ((r.booth_temp as number) < lo || (r.booth_temp as number) > hi) outside++
      }
    }
    const rate = outside / total
    assert.ok(rate > 0.07 && rate < 0.14, `fault rate ${rate}`)
  })

  it('records defects on failed and reworked inspections', () => {
    const plant = new PlantSimulator({ stations: ['quality'], sensorsPerStation: 5, seed: 9, faultRate: 0 })
    const readings = Array.from({ length: 400 }, (_, i) => plant.tick(i)).flat()
    const failed = readings.filter((r) => r.inspection_result !== 'PASS')
    assert.ok(failed.length > 0)
    assert.ok(failed.every((r) => (r.defect_count as number) >= 1))
  })
})

describe('Kafka cluster ids', () => {
  it('are 22 URL-safe base64 characters that never start with "-" (the storage tool would read an option)', async () => {
    const { newClusterId } = await import('../../src/services/index.ts')
    for (let i = 0; i < 2000; i++) {
      const id = newClusterId()
      assert.match(id, /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/)
    }
  })
})
