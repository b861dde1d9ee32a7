import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { IngestedReading } from '../../src/ingest/index.ts'
import { qualityOf, ReadingAssembler } from '../../src/ingest/opcua-readings.ts'
import { plant } from '../plant.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const target = (measurement: string) => ({
  station: 'paint',
  sensor: 'plc',
  measurement,
  nodeId: `n.${measurement}`,
})
const good = (value: number, timeMs: number, initial = false) => ({
  value,
  status: 0,
  statusName: 'Good',
  timeMs,
  initial,
})

function assembler(windowMs = 0) {
  const out: IngestedReading[] = []
  const a = new ReadingAssembler(
    () => plant,
    () => windowMs,
    (items) => out.push(...items),
  )
  return { a, out }
}

describe('OPC UA values into readings', () => {
  it('emits nothing until every measurement is known, then one reading at the newest source time', async () => {
    const { a, out } = assembler()
    a.value(target('booth_temp'), good(22, 1_000, true))
    a.value(target('booth_humidity'), good(60, 3_000, true))
    await sleep(5)
    assert.equal(out.length, 0)
    a.value(target('paint_thickness'), good(1.15, 2_000, true))
    await sleep(5)
    assert.deepEqual(out, [
      {
        reading: {
          station: 'paint',
          timestamp: 3,
          sensor_id: 'plc',
          line: 'L1',
          seq: 1,
          booth_temp: 22,
          booth_humidity: 60,
          paint_thickness: 1.15,
        },
        redelivered: true,
      },
    ])
  })

  it('gathers the changes of one sensor within the window, and a second change of a measurement starts a new reading', async () => {
    const { a, out } = assembler(30)
    for (const [m, v] of [
      ['booth_temp', 22],
      ['booth_humidity', 60],
      ['paint_thickness', 1.1],
    ] as const)
      a.value(target(m), good(v, 1_000))
    a.value(target('booth_temp'), good(23, 2_000))
    a.value(target('booth_humidity'), good(61, 2_000))
    await sleep(60)
    assert.deepEqual(
      out.map((o) => [o.reading.seq, o.reading.booth_temp, o.reading.booth_humidity, o.reading.timestamp]),
      [
        [1, 22, 60, 1],
        [2, 23, 61, 2],
      ],
    )
    assert.equal(out[1]?.redelivered, undefined)
  })

  it('sends a Bad value at once with its status, and keeps the last good value for the next reading', async () => {
    const { a, out } = assembler()
    for (const [m, v] of [
      ['booth_temp', 22],
      ['booth_humidity', 60],
      ['paint_thickness', 1.1],
    ] as const)
      a.value(target(m), good(v, 1_000))
    await sleep(5)
    a.value(target('booth_temp'), {
      value: 99,
      status: 0x808c0000,
      statusName: 'BadSensorFailure',
      timeMs: 2_000,
      initial: false,
    })
    assert.equal(out.length, 2)
    assert.equal(out[1]?.quality, 'Bad 0x808C0000 BadSensorFailure')
    assert.equal(out[1]?.reading.booth_temp, 99)
    a.value(target('booth_humidity'), good(62, 3_000))
    await sleep(5)
    assert.equal(out[2]?.reading.booth_temp, 22)
    assert.equal(out[2]?.quality, undefined)
  })

  it('ignores a node that has no value yet, and names Uncertain statuses', () => {
    const { a, out } = assembler()
    a.value(target('booth_temp'), {
      value: null,
      status: 0x40920000,
      statusName: 'UncertainInitialValue',
      timeMs: 1,
      initial: true,
    })
    assert.equal(out.length, 0)
    assert.equal(qualityOf(0x40920000, 'UncertainInitialValue'), 'Uncertain 0x40920000 UncertainInitialValue')
    assert.equal(qualityOf(0, 'Good'), undefined)
  })
})
