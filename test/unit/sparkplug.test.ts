import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import {
  type FedNode,
  REBIRTH_RETRY_MS,
  SparkplugHostState,
  type SpbMessage,
  type SpbMetric,
} from '../../src/ingest/sparkplug-state.ts'

const FED: FedNode = {
  station: 'paint',
  line: 'L1',
  measurements: [
    { name: 'booth_temp', metric: 'booth_temp' },
    { name: 'booth_humidity', metric: 'Booth/Humidity' },
  ],
}

/** A host following edge node `e1` of group `g`, and a fake edge node that numbers its messages. */
function setup() {
  const host = new SparkplugHostState((group, node) => (group === 'g' && node === 'e1' ? FED : undefined))
  let seq = 0
  let now = 1_000_000
  const send = (type: SpbMessage['type'], metrics: SpbMetric[], opts: Partial<SpbMessage> = {}) => {
    seq = type === 'NBIRTH' ? 0 : type === 'NDEATH' ? seq : (seq + 1) % 256
    now += 10
    return host.handle(
      {
        type,
        group: 'g',
        node: 'e1',
        seq: type === 'NDEATH' ? undefined : seq,
        timestamp: now,
        metrics,
        ...opts,
      },
      now,
    )
  }
  const nbirth = (bdSeq = 7) =>
    send('NBIRTH', [
      { name: 'bdSeq', value: bdSeq },
      { name: 'Node Control/Rebirth', value: false },
    ])
  const dbirth = (device: string, temp = 22, hum = 60, aliases = [1, 2], ts = 2_000_000) =>
    send(
      'DBIRTH',
      [
        { name: 'booth_temp', alias: aliases[0], value: temp, timestamp: ts },
        { name: 'Booth/Humidity', alias: aliases[1], value: hum, timestamp: ts },
        { name: 'other', alias: 99 + aliases[0]!, value: 'ignored' },
      ],
      { device },
    )
  const ddata = (device: string, metrics: SpbMetric[]) => send('DDATA', metrics, { device })
  return {
    host,
    send,
    nbirth,
    dbirth,
    ddata,
    skip: (n: number) => (seq = (seq + n) % 256),
    now: () => now,
    later: (ms: number) => (now += ms),
  }
}

describe('the Sparkplug host state machine', () => {
  it('makes a device a live sensor on its DBIRTH, with a reading of its current values', () => {
    const e = setup()
    const nb = e.nbirth()
    assert.deepEqual(nb, { missed: 0, sensors: [], readings: [] }, 'node metrics feed no measurement here')
    const db = e.dbirth('d1', 22.5, 61)
    assert.deepEqual(
      db.sensors.map((s) => [s.sensor, s.stale, s.reason]),
      [['d1', false, 'DBIRTH']],
    )
    assert.equal(db.readings.length, 1)
    const { reading, birth } = db.readings[0]!
    assert.equal(birth, true)
    assert.deepEqual(reading, {
      station: 'paint',
      timestamp: 2000,
      sensor_id: 'd1',
      line: 'L1',
      seq: 1,
      booth_temp: 22.5,
      booth_humidity: 61,
    })
  })

  it('decodes DDATA by alias into a full reading, each measurement its last value', () => {
    const e = setup()
    e.nbirth()
    e.dbirth('d1')
    e.dbirth('d2', 30, 40, [3, 4])
    const r = e.ddata('d2', [{ alias: 3, value: 31, timestamp: 5_000_000 }])
    assert.equal(r.rebirth, undefined)
    assert.deepEqual(
      r.readings.map((x) => [
        x.reading.sensor_id,
        x.reading.booth_temp,
        x.reading.booth_humidity,
        x.reading.timestamp,
        x.reading.seq,
        x.birth,
      ]),
      [['d2', 31, 40, 5000, 2, false]],
    )
    const other = e.ddata('d1', [{ alias: 2, value: 59.5 }])
    assert.equal(other.readings[0]?.reading.booth_humidity, 59.5)
    assert.equal(other.readings[0]?.reading.booth_temp, 22)
  })

  it('waits for every measurement before the first reading of a sensor', () => {
    const e = setup()
    e.nbirth()
    const db = e.send(
      'DBIRTH',
      [
        { name: 'booth_temp', alias: 1, value: 20 },
        { name: 'Booth/Humidity', alias: 2, value: undefined },
      ],
      { device: 'd1' },
    )
    assert.equal(db.readings.length, 0, 'humidity unknown (null in the birth)')
    assert.equal(e.ddata('d1', [{ alias: 1, value: 21 }]).readings.length, 0)
    assert.equal(e.ddata('d1', [{ alias: 2, value: 55 }]).readings.length, 1)
  })

  it('follows seq across 255 → 0 without asking for a rebirth', () => {
    const e = setup()
    e.nbirth()
    e.dbirth('d1')
    for (let i = 2; i < 260; i++) {
      const r = e.ddata('d1', [{ alias: 1, value: i }])
      assert.equal(r.rebirth, undefined, `message ${i} (seq ${i % 256})`)
      assert.equal(r.readings.length, 1)
    }
  })

  it('asks for a rebirth on a seq gap, counts the missed messages, and ignores data until the NBIRTH', () => {
    const e = setup()
    e.nbirth()
    e.dbirth('d1')
    e.skip(3)
    const gap = e.ddata('d1', [{ alias: 1, value: 99 }])
    assert.match(gap.rebirth ?? '', /seq 5 where 2 was due/)
    assert.equal(gap.missed, 4, 'three lost and the one after them ignored')
    assert.equal(gap.readings.length, 0)
    const after = e.ddata('d1', [{ alias: 1, value: 98 }])
    assert.equal(after.rebirth, undefined, 'asked once, not again at once')
    assert.equal(after.readings.length, 0)
    assert.equal(after.missed, 1)
    e.later(REBIRTH_RETRY_MS)
    assert.match(
      e.ddata('d1', [{ alias: 1, value: 97 }]).rebirth ?? '',
      /before an NBIRTH/,
      'asked again later',
    )
    e.nbirth()
    const reborn = e.dbirth('d1', 25, 65, [1, 2], 3_000_000)
    assert.equal(reborn.readings[0]?.reading.booth_temp, 25)
    assert.equal(e.ddata('d1', [{ alias: 1, value: 26 }]).readings[0]?.reading.booth_temp, 26)
  })

  it('asks for a rebirth on data before any birth, and on an alias no birth defined', () => {
    const e = setup()
    const early = e.ddata('d1', [{ alias: 1, value: 1 }])
    assert.match(early.rebirth ?? '', /DDATA before an NBIRTH/)
    assert.equal(early.missed, 1)
    e.nbirth()
    assert.match(e.ddata('d1', [{ alias: 1, value: 1 }]).rebirth ?? '', /DDATA of d1 before its DBIRTH/)
    e.nbirth()
    e.dbirth('d1')
    assert.match(e.ddata('d1', [{ alias: 42, value: 1 }]).rebirth ?? '', /alias no birth defined/)
  })

  it('makes a born sensor live again on a rebirth without repeating a reading it already produced', () => {
    const e = setup()
    e.nbirth()
    e.dbirth('d1')
    e.ddata('d1', [{ alias: 1, value: 23, timestamp: 9_000_000 }])
    e.nbirth()
    const same = e.send(
      'DBIRTH',
      [
        { name: 'booth_temp', alias: 1, value: 23, timestamp: 9_000_000 },
        { name: 'Booth/Humidity', alias: 2, value: 60, timestamp: 9_000_000 },
      ],
      { device: 'd1' },
    )
    assert.equal(same.sensors[0]?.stale, false)
    assert.equal(same.readings.length, 0, 'the rebirth repeats the values of the reading already produced')
  })

  it('marks the node’s sensors stale on an NDEATH with the NBIRTH’s bdSeq, and ignores one with another', () => {
    const e = setup()
    e.nbirth(7)
    e.dbirth('d1')
    e.dbirth('d2', 1, 2, [3, 4])
    const stale = e.send('NDEATH', [{ name: 'bdSeq', value: 6 }])
    assert.deepEqual(stale.sensors, [], 'an NDEATH of an earlier connection')
    assert.equal(e.ddata('d1', [{ alias: 1, value: 5 }]).readings.length, 1, 'still born')
    const dead = e.send('NDEATH', [{ name: 'bdSeq', value: 7 }])
    assert.deepEqual(
      dead.sensors.map((s) => [s.sensor, s.stale, s.reason, s.at]),
      [
        ['d1', true, 'NDEATH bdSeq 7', e.now()],
        ['d2', true, 'NDEATH bdSeq 7', e.now()],
      ],
    )
    assert.deepEqual(e.send('NDEATH', [{ name: 'bdSeq', value: 7 }]).sensors, [], 'a duplicate is ignored')
    assert.match(e.ddata('d1', [{ alias: 1, value: 5 }]).rebirth ?? '', /before an NBIRTH/)
    e.nbirth(8)
    assert.equal(e.dbirth('d1').sensors[0]?.stale, false, 'live again after its rebirth')
  })

  it('marks one device stale on its DDEATH, at the DDEATH’s time, and wants its DBIRTH before its data', () => {
    const e = setup()
    e.nbirth()
    e.dbirth('d1')
    e.dbirth('d2', 1, 2, [3, 4])
    const death = e.send('DDEATH', [], { device: 'd2', timestamp: 4_242_000 })
    assert.deepEqual(death.sensors, [
      { station: 'paint', sensor: 'd2', stale: true, at: 4_242_000, reason: 'DDEATH' },
    ])
    assert.equal(e.ddata('d1', [{ alias: 1, value: 5 }]).readings.length, 1, 'the other device lives on')
    assert.match(e.ddata('d2', [{ alias: 3, value: 5 }]).rebirth ?? '', /DDATA of d2 before its DBIRTH/)
  })

  it('makes the node itself a sensor when its own metrics feed the station', () => {
    const e = setup()
    const nb = e.send('NBIRTH', [
      { name: 'bdSeq', value: 1 },
      { name: 'booth_temp', alias: 1, value: 20 },
      { name: 'Booth/Humidity', alias: 2, value: 50 },
    ])
    assert.deepEqual(
      nb.readings.map((r) => r.reading.sensor_id),
      ['e1'],
    )
    assert.equal(e.send('NDATA', [{ alias: 2, value: 51 }]).readings[0]?.reading.booth_humidity, 51)
    assert.deepEqual(
      e.send('NDEATH', [{ name: 'bdSeq', value: 1 }]).sensors.map((s) => s.sensor),
      ['e1'],
    )
  })

  it('ignores edge nodes that feed no station', () => {
    const e = setup()
    const r = e.host.handle({ type: 'NDATA', group: 'g', node: 'other', seq: 1, metrics: [] }, 0)
    assert.deepEqual(r, { missed: 0, sensors: [], readings: [] })
  })
})
