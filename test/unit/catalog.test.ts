import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import {
  Catalog,
  type CatalogDocument,
  catalogJsonSchema,
  checkCatalog,
  checkCatalogText,
  DEFAULT_CATALOG,
  diffCatalogs,
  type NumericMeasurement,
  type SourceRecord,
} from '../../src/catalog/index.ts'
import { transformRecord, type ValidationPolicy } from '../../src/etl/index.ts'
import { PlantSimulator } from '../../src/simulator/index.ts'
import { plant, station, stationIds, weldingCell, withWelding } from '../plant.ts'

/** A copy of the default catalog's document to edit. */
const doc = (): CatalogDocument => structuredClone(plant.document)
type Doc = CatalogDocument
const st = (d: Doc, i: number) => d.lines[0]!.stations[i]!
const m = (d: Doc, i: number, name: string) => st(d, i).measurements[name] as Record<string, unknown>

/** The problems of an edited document, as `path: message` lines. */
function problems(edit: (d: Doc) => void): string[] {
  const d = doc()
  edit(d)
  const check = checkCatalog(d)
  return check.ok ? [] : check.problems.map((p) => `${p.path}: ${p.message}`)
}

describe('the catalog file', () => {
  it('the default catalog passes, with the four stations of the reference plant', () => {
    const check = checkCatalogText(readFileSync(DEFAULT_CATALOG, 'utf8'))
    assert.ok(check.ok, check.ok ? '' : JSON.stringify(check.problems))
    assert.deepEqual(stationIds, ['chassis', 'battery', 'paint', 'quality'])
    assert.deepEqual(
      station('paint').measurements.map((x) => x.name),
      ['booth_temp', 'booth_humidity', 'paint_thickness'],
    )
    const result = station('quality').measurements.find((x) => x.name === 'inspection_result')
    assert.deepEqual(result?.type === 'enum' && result.values, ['PASS', 'FAIL', 'REWORK'])
    assert.deepEqual(plant.inspection(), {
      station: 'quality',
      field: 'inspection_result',
      results: ['PASS', 'FAIL', 'REWORK'],
      pass: 'PASS',
      defects: 'defect_count',
    })
  })

  it('the example plant with two lines (docs/catalog.md) passes', () => {
    const check = checkCatalogText(
      readFileSync(new URL('../../catalog/examples/two-lines.yaml', import.meta.url), 'utf8'),
    )
    assert.ok(check.ok, check.ok ? '' : JSON.stringify(check.problems))
    const c = new Catalog(check.document)
    assert.deepEqual(c.topicsOf('sensor.'), ['sensor.body.welding', 'sensor.module_eol'])
    assert.equal(c.inspection('module_eol')?.pass, 'OK')
  })

  it('names BI columns by measurement and unit symbol, as the views always did', () => {
    const columns = plant.stations.flatMap((s) => s.measurements.map((x) => x.column))
    assert.deepEqual(columns, [
      'bolt_torque_nm',
      'weld_current_ka',
      'frame_alignment_mm',
      'cell_voltage_v',
      'module_temp_degc',
      'insulation_resistance_megohm',
      'booth_temp_degc',
      'booth_humidity_pct_rh',
      'paint_thickness_mil',
      'defect_count',
      'inspection_result',
    ])
  })

  it('the committed JSON Schema for editors is the one the validator uses', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../catalog/catalog.schema.json', import.meta.url), 'utf8'),
    )
    assert.deepEqual(file, JSON.parse(JSON.stringify(catalogJsonSchema())))
  })

  const rules: [string, (d: Doc) => void, string][] = [
    [
      'a spec limit out of order (the issue’s example)',
      (d) => Object.assign(m(d, 2, 'booth_temp').spec as object, { usl: 21 }),
      '/lines/0/stations/2/measurements/booth_temp/spec/usl: must be greater than target 22',
    ],
    [
      'lsl not below usl',
      (d) => Object.assign(m(d, 0, 'bolt_torque').spec as object, { lsl: 230, target: undefined }),
      '/lines/0/stations/0/measurements/bolt_torque/spec/usl: must be greater than lsl 230',
    ],
    [
      'a target below the lsl',
      (d) => Object.assign(m(d, 0, 'bolt_torque').spec as object, { target: 170 }),
      '/lines/0/stations/0/measurements/bolt_torque/spec/target: must be greater than lsl 180',
    ],
    [
      'min not below max',
      (d) => Object.assign(m(d, 0, 'weld_current'), { range: { min: 30, max: 30 } }),
      '/lines/0/stations/0/measurements/weld_current/range/max: must be greater than min 30',
    ],
    [
      'a spec limit outside the plausible range',
      (d) => Object.assign(m(d, 1, 'cell_voltage').spec as object, { usl: 6 }),
      '/lines/0/stations/1/measurements/cell_voltage/spec/usl: 6 is outside the range 0…5',
    ],
    [
      'a unit that is not UCUM',
      (d) => Object.assign(m(d, 0, 'bolt_torque'), { unit: 'Nm' }),
      '/lines/0/stations/0/measurements/bolt_torque/unit: "Nm" is not a UCUM unit code',
    ],
    [
      'a station id used twice',
      (d) => Object.assign(st(d, 1), { id: 'chassis' }),
      '/lines/0/stations/1/id: station "chassis" is already defined at /lines/0/stations/0/id',
    ],
    [
      'an area id used twice',
      (d) => d.areas.push({ id: 'assembly', name: 'Again' }),
      '/areas/1/id: area "assembly" is already defined at /areas/0/id',
    ],
    [
      'a line id used twice',
      (d) =>
        d.lines.push({
          ...structuredClone(d.lines[0]!),
          stations: [{ ...structuredClone(st(d, 0)), id: 'other', topic: 'other' }],
        }),
      '/lines/1/id: line "L1" is already defined at /lines/0/id',
    ],
    [
      'a sensor id used twice',
      (d) => {
        st(d, 0).sensors = [{ id: 's-1' }]
        st(d, 1).sensors = [{ id: 's-1' }]
      },
      '/lines/0/stations/1/sensors/0/id: sensor "s-1" is already defined at /lines/0/stations/0/sensors/0/id',
    ],
    [
      'a line in an area that does not exist',
      (d) => Object.assign(d.lines[0]!, { area: 'body' }),
      '/lines/0/area: no area "body"; the areas: assembly',
    ],
    [
      'a topic Kafka refuses',
      (d) => Object.assign(st(d, 2), { topic: 'paint shop' }),
      '/lines/0/stations/2/topic: "paint shop" is not a legal Kafka topic name',
    ],
    [
      'two topics Kafka cannot tell apart ("." and "_")',
      (d) => {
        Object.assign(st(d, 0), { topic: 'line.one' })
        Object.assign(st(d, 1), { topic: 'line_one' })
      },
      '/lines/0/stations/1/topic: topic (with "." and "_" alike) "line_one" is already defined at /lines/0/stations/0/topic',
    ],
    [
      'an enum value listed twice',
      (d) => Object.assign(m(d, 3, 'inspection_result'), { values: ['PASS', 'FAIL', 'PASS'] }),
      '/lines/0/stations/3/measurements/inspection_result/values: "PASS" is listed twice',
    ],
    [
      'a pass value that is not a value',
      (d) => Object.assign(m(d, 3, 'inspection_result'), { pass: 'OK' }),
      '/lines/0/stations/3/measurements/inspection_result/pass: "OK" is not one of the values (PASS, FAIL, REWORK)',
    ],
    [
      'weights that do not match the values',
      (d) => Object.assign(m(d, 3, 'inspection_result'), { simulation: { weights: [1, 0] } }),
      '/lines/0/stations/3/measurements/inspection_result/simulation/weights: has 2 weights for 3 values',
    ],
    [
      'a role on a measurement of the wrong type',
      (d) => Object.assign(m(d, 3, 'defect_count'), { role: 'inspection_result' }),
      '/lines/0/stations/3/measurements/defect_count/role: an inspection_result is an enum with a "pass" value',
    ],
    [
      'two BI columns of one name',
      (d) => Object.assign(m(d, 0, 'weld_current'), { column: 'bolt_torque_nm' }),
      '/lines/0/stations/0/measurements/weld_current/column: BI column "bolt_torque_nm" is also bolt_torque’s; set "column"'.replace(
        '’',
        "'",
      ),
    ],
    [
      'an unknown key (the schema)',
      (d) => Object.assign(m(d, 2, 'booth_temp'), { precision: 1 }),
      '/lines/0/stations/2/measurements/booth_temp: unknown key "precision"',
    ],
    [
      'a missing key (the schema)',
      (d) => delete m(d, 2, 'booth_temp').decimals,
      '/lines/0/stations/2/measurements/booth_temp: "decimals" is required',
    ],
    [
      'a measurement type that does not exist (the schema)',
      (d) => Object.assign(m(d, 2, 'booth_temp'), { type: 'float' }),
      '/lines/0/stations/2/measurements/booth_temp: type must be one of number, integer, enum, boolean',
    ],
    [
      'a station id that cannot name a view (the schema)',
      (d) => Object.assign(st(d, 2), { id: 'Paint Shop' }),
      '/lines/0/stations/2/id: must match',
    ],
  ]
  for (const [rule, edit, expected] of rules) {
    it(`rejects ${rule}, naming its path`, () => {
      const found = problems(edit)
      assert.ok(
        found.some((p) => p.startsWith(expected)),
        `expected ${expected}\nfound:\n${found.join('\n')}`,
      )
    })
  }

  it('reports every problem at once', () => {
    const found = problems((d) => {
      Object.assign(m(d, 2, 'booth_temp').spec as object, { usl: 21 })
      Object.assign(m(d, 0, 'bolt_torque'), { unit: 'Nm' })
      Object.assign(d.lines[0]!, { area: 'body' })
    })
    assert.equal(found.length, 3, found.join('\n'))
  })

  it('rejects broken YAML and a key given twice, with the line', () => {
    const broken = checkCatalogText('catalog: 1\nsite: [\n')
    assert.ok(!broken.ok && /^YAML line \d+ column \d+/.test(broken.problems[0]!.message))
    const twice = checkCatalogText('catalog: 1\ncatalog: 1\n')
    assert.ok(!twice.ok && /Map keys must be unique/.test(twice.problems[0]!.message))
  })
})

describe('a catalog version against the one before', () => {
  it('says what is added, retired, changed and which limits are new', () => {
    const next = withWelding()
    next.lines[0]!.stations.splice(1, 1) // battery leaves
    Object.assign(m(next, 1, 'booth_temp').spec as object, { usl: 25 })
    const diff = diffCatalogs(plant, new Catalog(next))
    assert.deepEqual(diff.added, ['welding'])
    assert.deepEqual(diff.retired, ['battery'])
    assert.deepEqual(diff.changed, [
      {
        station: 'paint',
        changes: ['booth_temp: spec {"lsl":18,"target":22,"usl":26} → {"lsl":18,"target":22,"usl":25}'],
      },
    ])
    assert.deepEqual(diff.limits, [
      { station: 'paint', measurement: 'booth_temp', lsl: 18, target: 22, usl: 25 },
      { station: 'welding', measurement: 'weld_current', lsl: 8, target: 10, usl: 12 },
      { station: 'welding', measurement: 'electrode_force', lsl: 3, target: 4, usl: 5 },
    ])
    assert.deepEqual(diffCatalogs(plant, new Catalog(doc())), {
      added: [],
      retired: [],
      changed: [],
      limits: [],
      other: [],
    })
  })

  it('judges a reading by the limits in force at its time, and refuses a retired station', () => {
    const d = doc()
    const paint = st(d, 2)
    d.lines[0]!.stations = [paint]
    const changedAt = 1_767_225_600
    const limits = new Map([
      [
        'paint/booth_temp',
        [
          { from: Number.NEGATIVE_INFINITY, lsl: 18, target: 22, usl: 26 },
          { from: changedAt, lsl: 18, target: 22, usl: 23 },
        ],
      ],
    ])
    const retiredStation = st(doc(), 0)
    const c = new Catalog(d, {
      version: 3,
      limits,
      retired: [
        {
          station: retiredStation,
          line: { id: 'L1', name: 'x' },
          area: { id: 'assembly', name: 'y' },
          version: 2,
          at: '2026-01-01T00:00:00Z',
        },
      ],
    })
    const policy: ValidationPolicy = {
      catalog: c,
      topicPrefix: 'sensor.',
      nowSec: changedAt + 3600,
      maxAgeSec: 86_400 * 30,
      futureToleranceSec: 60,
      maxBytes: 65_536,
    }
    const reading = (ts: number, extra: object = {}): SourceRecord => ({
      topic: 'sensor.paint',
      partition: 0,
      offset: 1n,
      key: null,
      value: Buffer.from(
        JSON.stringify({
          station: 'paint',
          timestamp: ts,
          booth_temp: 24.5,
          booth_humidity: 60,
          paint_thickness: 1.1,
          ...extra,
        }),
      ),
    })
    const before = transformRecord(reading(changedAt - 60), policy, 'now')
    const after = transformRecord(reading(changedAt + 60), policy, 'now')
    assert.ok(before.ok && after.ok)
    assert.equal(
      (before.reading as { out_of_spec?: string[] }).out_of_spec,
      undefined,
      'within yesterday’s limits',
    )
    assert.deepEqual(
      (after.reading as { out_of_spec?: string[] }).out_of_spec,
      ['booth_temp'],
      'above today’s',
    )
    const retired = transformRecord(
      {
        ...reading(changedAt),
        topic: 'sensor.chassis',
        value: Buffer.from(JSON.stringify({ station: 'chassis', timestamp: changedAt })),
      },
      policy,
      'now',
    )
    assert.ok(
      !retired.ok &&
        retired.rejection.reasonCode === 'UNKNOWN_STATION' &&
        /retired in catalog version 2/.test(retired.rejection.reason),
    )
    assert.equal(c.known('chassis')?.retired?.version, 2)
    assert.deepEqual(c.topicsOf('sensor.'), ['sensor.paint'])
  })

  it('refuses a reading from a sensor its station does not list', () => {
    const d = doc()
    st(d, 2).sensors = [{ id: 'paint-01' }]
    const policy: ValidationPolicy = {
      catalog: new Catalog(d),
      topicPrefix: 'sensor.',
      nowSec: 1_767_225_600,
      maxAgeSec: 86_400,
      futureToleranceSec: 60,
      maxBytes: 65_536,
    }
    const value = (sensor: string) =>
      Buffer.from(
        JSON.stringify({
          station: 'paint',
          sensor_id: sensor,
          timestamp: 1_767_225_600,
          booth_temp: 22,
          booth_humidity: 60,
          paint_thickness: 1.1,
        }),
      )
    const record = (sensor: string): SourceRecord => ({
      topic: 'sensor.paint',
      partition: 0,
      offset: 1n,
      key: null,
      value: value(sensor),
    })
    assert.ok(transformRecord(record('paint-01'), policy, 'now').ok)
    const other = transformRecord(record('paint-99'), policy, 'now')
    assert.ok(!other.ok && other.rejection.reasonCode === 'UNKNOWN_SENSOR', JSON.stringify(other))
  })
})

describe('the plant simulator', () => {
  const make = (seed = 7) =>
    new PlantSimulator({ catalog: plant, sensorsPerStation: 3, seed, faultRate: 0.05 })

  it('emits the reference message shape with every catalog measurement, inside plausible ranges', () => {
    const sim = make()
    for (let i = 0; i < 200; i++) {
      for (const r of sim.tick(1_738_433_976_027 + i * 5000)) {
        assert.equal(typeof r.timestamp, 'number')
        assert.ok(r.timestamp > 1e9 && r.timestamp < 1e11, 'timestamp is in epoch seconds')
        for (const field of station(r.station).measurements) {
          const v = r[field.name]
          if (field.type === 'enum') assert.ok(field.values.includes(v as string), `${field.name}=${v}`)
          else if (field.type === 'number' || field.type === 'integer') {
            assert.equal(typeof v, 'number')
            assert.ok(
              (v as number) >= field.range.min && (v as number) <= field.range.max,
              `${field.name}=${v}`,
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
    const sim = new PlantSimulator({
      catalog: plant,
      stations: ['paint'],
      sensorsPerStation: 10,
      seed: 3,
      faultRate: 0.1,
    })
    const spec = (station('paint').measurements.find((x) => x.name === 'booth_temp') as NumericMeasurement)
      .spec!
    let outside = 0
    let total = 0
    for (let i = 0; i < 500; i++) {
      for (const r of sim.tick(i)) {
        total++
        if ((r.booth_temp as number) < spec.lsl! || (r.booth_temp as number) > spec.usl!) outside++
      }
    }
    const rate = outside / total
    assert.ok(rate > 0.07 && rate < 0.14, `fault rate ${rate}`)
  })

  it('records defects on failed and reworked inspections', () => {
    const sim = new PlantSimulator({
      catalog: plant,
      stations: ['quality'],
      sensorsPerStation: 5,
      seed: 9,
      faultRate: 0,
    })
    const readings = Array.from({ length: 400 }, (_, i) => sim.tick(i)).flat()
    const failed = readings.filter((r) => r.inspection_result !== 'PASS')
    assert.ok(failed.length > 0)
    assert.ok(failed.every((r) => (r.defect_count as number) >= 1))
  })

  it('follows a new catalog: a new station’s sensors start, a retired one’s stop, the others carry on', () => {
    const sim = new PlantSimulator({ catalog: plant, sensorsPerStation: 2, seed: 4, faultRate: 0 })
    sim.tick(0)
    const d = doc()
    d.lines[0]!.stations.splice(0, 1)
    d.lines[0]!.stations.push(weldingCell({ sensors: ['weld-a'] }))
    sim.follow(new Catalog(d))
    const readings = sim.tick(5000)
    assert.deepEqual([...new Set(readings.map((r) => r.station))], ['battery', 'paint', 'quality', 'welding'])
    const weld = readings.find((r) => r.station === 'welding')!
    assert.equal(weld.sensor_id, 'weld-a')
    assert.ok(
      (weld.weld_current as number) > 8 && (weld.weld_current as number) < 12,
      `nominal at target: ${weld.weld_current}`,
    )
    assert.equal(typeof weld.seam_ok, 'boolean')
    assert.equal(readings.find((r) => r.sensor_id === 'paint-01')!.seq, 2, 'its sequence carries on')
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
