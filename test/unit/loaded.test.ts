import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { decodeLoaded, encodeLoaded, inSourceOrder, projection } from '../../src/db/index.ts'

describe('the loaded-ranges message (NOTIFY evf_loaded)', () => {
  it('decodes what it encodes, offsets beyond 2^53 included', () => {
    const ranges = [
      { topic: 'sensor.paint', partition: 2, from: 0n, to: 5000n },
      { topic: 'sensor.quality', partition: 0, from: 9_007_199_254_740_993n, to: 9_007_199_254_741_000n },
    ]
    assert.deepEqual(decodeLoaded(encodeLoaded(ranges)), ranges)
  })

  it('stays compact: 12 partitions fit far below the 8,000-byte NOTIFY limit', () => {
    const ranges = Array.from({ length: 12 }, (_, i) => ({
      topic: `sensor.station${i % 4}`,
      partition: i % 3,
      from: 123_456_789n,
      to: 123_461_789n,
    }))
    assert.ok(encodeLoaded(ranges).length < 1000)
  })
})

describe('the rows the alarm evaluator reads back', () => {
  const row = (range: number, offset: string) => ({ station: 's', at: 0, data: '{}', range, offset })
  it('come in range (topic, partition) and numeric offset order, sorted only when they are not', () => {
    const inOrder = [row(1, '9'), row(1, '10'), row(2, '2'), row(3, '1')]
    assert.equal(inSourceOrder(inOrder), inOrder, 'in order: the same array, untouched')
    const mixed = [row(3, '1'), row(2, '2'), row(1, '10'), row(1, '9')]
    assert.deepEqual(
      inSourceOrder(mixed).map((r) => `${r.range}/${r.offset}`),
      ['1/9', '1/10', '2/2', '3/1'],
    )
  })
})

describe("the fields the evaluator reads back (a reading's projection)", () => {
  it('binds every station and field name as a parameter, numbered from the first free one', () => {
    const fields = new Map([
      ['paint', ['sensor_id', 'thickness']],
      ["o'brien", ['x']],
      ['idle', []],
    ])
    const { sql, params } = projection(fields, 5)
    assert.deepEqual(params, ['sensor_id', 'thickness', 'paint', 'x', "o'brien"])
    assert.equal(
      sql,
      'CASE s.station WHEN $7::text THEN json_build_object($5::text, s.data -> $5::text, $6::text, s.data -> $6::text)::text ' +
        'WHEN $9::text THEN json_build_object($8::text, s.data -> $8::text)::text END',
    )
    assert.ok(!sql.includes('brien'), 'no name is spliced into the SQL')
  })

  it('is NULL when no rule reads a reading', () => {
    assert.deepEqual(projection(new Map(), 5), { sql: 'NULL::text', params: [] })
  })
})
