import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { round, type SourceRecord, transformRecord } from '../../src/etl/index.ts'

const at = '2026-01-01T00:00:00.000Z'
const record = (value: unknown, topic = 'sensor.paint'): SourceRecord => ({
  topic,
  partition: 0,
  offset: 5n,
  key: Buffer.from('paint-01'),
  value: value === undefined ? null : Buffer.from(typeof value === 'string' ? value : JSON.stringify(value)),
})
const paint = {
  station: 'paint',
  timestamp: 1738433976.02724,
  booth_temp: 19.94,
  booth_humidity: 67,
  paint_thickness: 1.14149,
}

describe('transformRecord', () => {
  it('rounds numeric fields to the catalog precision and adds processed_at', () => {
    const r = transformRecord(record(paint), 'sensor.', at)
    assert.ok(r.ok)
    const data = JSON.parse(r.row.data)
    assert.equal(data.booth_temp, 19.9)
    assert.equal(data.booth_humidity, 67)
    assert.equal(data.paint_thickness, 1.141)
    assert.equal(data.processed_at, at)
    assert.equal(r.row.timestamp, paint.timestamp)
    assert.equal(r.row.station, 'paint')
    assert.equal(r.row.offset, 5n)
  })

  it('accepts the reference shape exactly and keeps extra fields', () => {
    const r = transformRecord(record({ ...paint, sensor_id: 'p-1', firmware: '2.1' }), 'sensor.', at)
    assert.ok(r.ok)
    assert.equal(JSON.parse(r.row.data).firmware, '2.1')
  })

  const bad: [string, unknown, string, string?][] = [
    ['an empty value', undefined, 'EMPTY_VALUE'],
    ['invalid JSON', '{"station": "paint",', 'INVALID_JSON'],
    ['a JSON array', [paint], 'NOT_AN_OBJECT'],
    ['a JSON number', 42, 'NOT_AN_OBJECT'],
    ['no station', { timestamp: 1 }, 'MISSING_STATION'],
    ['an unknown station', { ...paint, station: 'welding' }, 'UNKNOWN_STATION'],
    ['a station on another station’s topic', paint, 'STATION_TOPIC_MISMATCH', 'sensor.battery'],
    ['no timestamp', { station: 'paint' }, 'MISSING_TIMESTAMP'],
    ['a timestamp as a string', { ...paint, timestamp: '1738433976' }, 'INVALID_TIMESTAMP'],
  ]
  for (const [what, value, code, topic] of bad) {
    it(`rejects ${what} with ${code}`, () => {
      const r = transformRecord(record(value, topic), 'sensor.', at)
      assert.equal(r.ok, false)
      if (!r.ok) {
        assert.equal(r.rejection.reasonCode, code)
        assert.ok(r.rejection.reason.length > 0)
      }
    })
  }
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

describe('rejections', () => {
  it('keep the reason printable and storable, whatever the input', () => {
    const r = transformRecord(record(Buffer.from([0x7b, 0x00, 0xff]).toString('latin1')), 'sensor.', at)
    assert.equal(r.ok, false)
    if (!r.ok) assert.ok(!r.rejection.reason.includes('\u0000'))
  })

  it('reject a string holding U+0000, which jsonb cannot store', () => {
    const r = transformRecord(record({ ...paint, note: 'a\u0000b' }), 'sensor.', at)
    assert.equal(r.ok, false)
    if (!r.ok) assert.equal(r.rejection.reasonCode, 'UNSUPPORTED_CHARACTER')
    const ok = transformRecord(record({ ...paint, note: 'a\\u0000b' }), 'sensor.', at)
    assert.ok(ok.ok, 'an escaped backslash followed by u0000 is plain text')
  })
})
