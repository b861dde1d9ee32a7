import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { SourceRecord } from '../../src/catalog/index.ts'
import { round, transformRecord, type ValidationPolicy } from '../../src/etl/index.ts'
import { flatWithoutDuplicates } from '../../src/etl/validate.ts'
import { plant } from '../plant.ts'

const at = '2026-01-01T00:00:00.000Z'
const NOW = 1_767_225_600 // 2026-01-01T00:00:00Z
const policy: ValidationPolicy = {
  catalog: plant,
  topicPrefix: 'sensor.',
  nowSec: NOW,
  maxAgeSec: 30 * 86_400,
  futureToleranceSec: 300,
  maxBytes: 65_536,
}
const record = (value: unknown, topic = 'sensor.paint'): SourceRecord => ({
  topic,
  partition: 0,
  offset: 5n,
  key: Buffer.from('paint-01'),
  value:
    value === undefined
      ? null
      : Buffer.isBuffer(value)
        ? value
        : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
})
const paint = {
  station: 'paint',
  timestamp: NOW - 10.27,
  booth_temp: 19.94,
  booth_humidity: 67,
  paint_thickness: 1.14149,
}
const run = (value: unknown, topic?: string) => transformRecord(record(value, topic), policy, at)

describe('transformRecord', () => {
  it('rounds numeric fields to the catalog precision and adds processed_at', () => {
    const r = run(paint)
    assert.ok(r.ok)
    const data = JSON.parse(r.row.data)
    assert.equal(data.booth_temp, 19.9)
    assert.equal(data.booth_humidity, 67)
    assert.equal(data.paint_thickness, 1.141)
    assert.equal(data.processed_at, at)
    assert.equal(data.timestamp, paint.timestamp, 'the raw timestamp is kept')
    assert.equal(r.row.timestamp, paint.timestamp)
    assert.equal(r.row.station, 'paint')
    assert.equal(r.row.offset, 5n)
    assert.equal(data.out_of_spec, undefined)
  })

  it('accepts the reference shape exactly, and keeps extra fields, SQL-looking and unicode text included', () => {
    const extra = {
      sensor_id: 'p-1',
      note: "'; DROP TABLE sensor_data; --",
      label: 'Lackierstraße 🚗 \u0007bell',
    }
    const r = run({ ...paint, ...extra })
    assert.ok(r.ok)
    const data = JSON.parse(r.row.data)
    for (const [k, v] of Object.entries(extra)) assert.equal(data[k], v)
  })

  it('keeps a reading outside its spec limits, and flags it', () => {
    const r = run({ ...paint, booth_temp: 31.2, booth_humidity: 45 })
    assert.ok(r.ok)
    assert.deepEqual(JSON.parse(r.row.data).out_of_spec, ['booth_temp', 'booth_humidity'])
  })

  const bad: [string, unknown, string, string?][] = [
    ['an empty value', undefined, 'EMPTY_VALUE'],
    ['an empty buffer', Buffer.alloc(0), 'EMPTY_VALUE'],
    ['a value over the size limit', { ...paint, blob: 'x'.repeat(70_000) }, 'VALUE_TOO_LARGE'],
    ['invalid UTF-8', Buffer.from([0x7b, 0x22, 0xc3, 0x28, 0x22, 0x7d]), 'INVALID_UTF8'],
    ['invalid JSON', '{"station": "paint",', 'INVALID_JSON'],
    ['truncated JSON', JSON.stringify(paint).slice(0, 40), 'INVALID_JSON'],
    ['NaN as a bare word', '{"station":"paint","timestamp":NaN}', 'INVALID_JSON'],
    ['a JSON array', [paint], 'NOT_AN_OBJECT'],
    ['a JSON number', 42, 'NOT_AN_OBJECT'],
    ['a JSON string', '"paint"', 'NOT_AN_OBJECT'],
    ['JSON null', 'null', 'NOT_AN_OBJECT'],
    ['a duplicate key', '{"station":"paint","station":"battery","timestamp":1}', 'DUPLICATE_KEY'],
    ['a duplicate key spelled with an escape', '{"station":"paint","st\\u0061tion":"x"}', 'DUPLICATE_KEY'],
    [
      'a duplicate key and a comma in a string',
      '{"station":"paint","note":"a,b","station":"paint"}',
      'DUPLICATE_KEY',
    ],
    ['a duplicate key in a nested object', '{"station":"paint","x":{"a":1,"a":2}}', 'DUPLICATE_KEY'],
    [
      'a deeply nested object',
      { ...paint, deep: JSON.parse(`${'{"a":'.repeat(10)}1${'}'.repeat(10)}`) },
      'TOO_DEEP',
    ],
    ['no station', { timestamp: NOW }, 'MISSING_STATION'],
    ['an unknown station', { ...paint, station: 'welding' }, 'UNKNOWN_STATION'],
    ['a SQL fragment as the station', { ...paint, station: "paint' OR 1=1 --" }, 'UNKNOWN_STATION'],
    ['a station on another station’s topic', paint, 'STATION_TOPIC_MISMATCH', 'sensor.battery'],
    ['no timestamp', { ...paint, timestamp: undefined }, 'MISSING_TIMESTAMP'],
    ['a timestamp as a string', { ...paint, timestamp: String(NOW) }, 'INVALID_TIMESTAMP'],
    ['a negative timestamp', { ...paint, timestamp: -5 }, 'INVALID_TIMESTAMP'],
    ['a timestamp in milliseconds', { ...paint, timestamp: NOW * 1000 }, 'TIMESTAMP_IN_FUTURE'],
    ['a timestamp an hour ahead', { ...paint, timestamp: NOW + 3600 }, 'TIMESTAMP_IN_FUTURE'],
    ['a timestamp from 2001', { ...paint, timestamp: 1_000_000_000 }, 'TIMESTAMP_TOO_OLD'],
    ['a missing measurement', { ...paint, paint_thickness: undefined }, 'MISSING_FIELD'],
    ['a null measurement', { ...paint, booth_temp: null }, 'MISSING_FIELD'],
    ['a number as a string', { ...paint, booth_temp: '19.9' }, 'WRONG_TYPE'],
    ['NaN as a string', { ...paint, booth_temp: 'NaN' }, 'WRONG_TYPE'],
    ['Infinity as a string', { ...paint, booth_temp: 'Infinity' }, 'WRONG_TYPE'],
    [
      'a number too large for a double',
      '{"station":"paint","timestamp":1767225590,"booth_temp":1e400,"booth_humidity":60,"paint_thickness":1.1}',
      'WRONG_TYPE',
    ],
    [
      'a fraction where an integer is due',
      { station: 'quality', timestamp: NOW, defect_count: 1.5, inspection_result: 'PASS' },
      'WRONG_TYPE',
      'sensor.quality',
    ],
    [
      'an unknown inspection result',
      { station: 'quality', timestamp: NOW, defect_count: 0, inspection_result: 'MAYBE' },
      'INVALID_VALUE',
      'sensor.quality',
    ],
    ['negative humidity', { ...paint, booth_humidity: -4 }, 'OUT_OF_PLAUSIBLE_RANGE'],
    ['a U+0000 in a string', { ...paint, note: 'a\u0000b' }, 'UNSUPPORTED_CHARACTER'],
  ]
  for (const [what, value, code, topic] of bad) {
    it(`rejects ${what} with ${code}`, () => {
      const r = run(value, topic)
      assert.equal(r.ok, false, `${what} was accepted`)
      if (!r.ok) {
        assert.equal(r.rejection.reasonCode, code)
        assert.ok(r.rejection.reason.length > 0)
        assert.ok(!r.rejection.reason.includes('\u0000'), 'the reason is storable')
      }
    })
  }

  it('treats an escaped backslash followed by u0000 as plain text', () => {
    assert.ok(run({ ...paint, note: 'a\\u0000b' }).ok)
  })

  it('says a timestamp in milliseconds looks like milliseconds', () => {
    const r = run({ ...paint, timestamp: NOW * 1000 })
    assert.ok(!r.ok && /milliseconds/.test(r.rejection.reason))
  })
})

describe('round', () => {
  it('rounds half away from zero without binary surprises', () => {
    assert.equal(round(1.005, 2), 1.01)
    assert.equal(round(-1.005, 2), -1.01)
    assert.equal(round(2.5, 0), 3)
    assert.equal(round(19.94, 1), 19.9)
    assert.equal(round(-0.0001, 2), 0)
  })
})

describe('the flat-object shortcut of the duplicate-key check', () => {
  it('vouches only for a flat object whose members are its keys, and leaves every doubt to the scan', () => {
    const n = (text: string) => Object.keys(JSON.parse(text) as object).length
    for (const [text, expected] of [
      ['{"station":"paint","timestamp":1,"thickness":120.5}', true],
      ['{"station":"paint","station":"battery","timestamp":1}', false],
      ['{"station":"paint","note":"a,b"}', false],
      ['{"station":"paint","x":{"a":1}}', false],
      ['{"station":"paint","x":[1,2]}', false],
      ['{}', false],
    ] as const)
      assert.equal(flatWithoutDuplicates(text, n(text)), expected, text)
  })
})
