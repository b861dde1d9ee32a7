import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import mqtt, { type IPublishPacket, type Packet } from 'mqtt'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { toIngested, topicMatches } from '../../src/ingest/mqtt.ts'
import { HELD, HeldAcks } from '../../src/ingest/mqtt-acks.ts'
import { type EmbeddedMqtt, startEmbeddedMosquitto } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { log, sleep, waitFor } from '../helpers.ts'

const station = catalogFromFile(join(repoRoot, 'catalog', 'plant.yaml')).stations[0]
if (!station) throw new Error('the plant catalog has no station')

describe('MQTT topic filters', () => {
  it('match + one level and # the rest, as MQTT 3.1.1 §4.7 says', () => {
    assert.ok(topicMatches('evf/L1/chassis/+', 'evf/L1/chassis/s1'))
    assert.ok(!topicMatches('evf/L1/chassis/+', 'evf/L1/chassis/s1/x'))
    assert.ok(!topicMatches('evf/L1/chassis/+', 'evf/L1/chassis'))
    assert.ok(topicMatches('evf/#', 'evf/L1/chassis/s1'))
    assert.ok(topicMatches('evf/#', 'evf'))
    assert.ok(topicMatches('a/b', 'a/b'))
    assert.ok(!topicMatches('a/b', 'a/c'))
    assert.ok(!topicMatches('#', '$SYS/broker/load'))
    assert.ok(!topicMatches('+/broker', '$SYS/broker'))
  })
})

describe('an MQTT payload as a reading', () => {
  const topic = `evf/L1/${station.id}/s7`
  it('gets the mapped station and the topic’s sensor when it has neither', () => {
    const item = toIngested(topic, Buffer.from('{"timestamp":1,"seq":3}'), station)
    assert.equal(item.raw, undefined)
    assert.equal(item.reading.station, station.id)
    assert.equal(item.reading.sensor_id, 's7')
    assert.equal(item.reading.seq, 3)
  })
  it('goes as it came when it has both', () => {
    const payload = Buffer.from(`{"station":"${station.id}","sensor_id":"x1","timestamp":1}`)
    const item = toIngested(topic, payload, station)
    assert.equal(item.raw, payload)
    assert.equal(item.reading.sensor_id, 'x1')
  })
  it('goes as it came, routed to the mapped station, when it is not a reading (for the ETL to dead-letter)', () => {
    for (const text of ['not json', '[1,2]', '42', 'null', '{"station":"elsewhere"}', '{"sensor_id":5}']) {
      const item = toIngested(topic, Buffer.from(text), station)
      assert.equal(item.raw?.toString(), text, text)
      assert.equal(item.reading.station, station.id)
      assert.equal(item.reading.sensor_id, 's7')
    }
  })
})

async function broker(t: TestContext): Promise<EmbeddedMqtt> {
  const dataDir = mkdtempSync(join(tmpdir(), 'evf-mqtt-unit-'))
  const b = await startEmbeddedMosquitto({ dataDir, log })
  t.after(async () => {
    await b.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return b
}

const sessionOptions = (b: EmbeddedMqtt): mqtt.IClientOptions => ({
  username: 'ingest',
  password: b.passwords.ingest,
  protocolVersion: 5,
  clean: false,
  properties: { sessionExpiryInterval: 600 },
  reconnectPeriod: 0,
})

describe('PUBACKs held until Kafka acknowledged (MQTT.js 5.16 internals, against Mosquitto)', () => {
  it('go out in receive order only when each write resolved, keep the connection alive meanwhile, and an unsent one is redelivered', async (t) => {
    const b = await broker(t)
    const options = sessionOptions(b)
    const sub = await mqtt.connectAsync(b.url, { ...options, clientId: 'held-acks', keepalive: 1 })
    t.after(() => sub.end(true))
    const acks = new HeldAcks(sub, () => {})
    // Connected before HeldAcks listened: this connection is its number 0.
    const writes: { id: number; resolve: () => void }[] = []
    sub.handleMessage = (packet, callback) => {
      let resolve = () => {}
      const write = new Promise<void>((r) => (resolve = r))
      writes.push({ id: Number((packet as IPublishPacket).payload.toString()), resolve })
      acks.hold(packet.messageId as number, write)
      callback(HELD)
    }
    const sent: Packet[] = []
    sub.on('packetsend', (p) => sent.push(p))
    let offline = false
    sub.on('offline', () => (offline = true))
    await sub.subscribeAsync('evf/held', { qos: 1 })
    const pub = await mqtt.connectAsync(b.url, { username: 'device', password: b.passwords.device })
    t.after(() => pub.end(true))
    for (const i of [1, 2, 3]) await pub.publishAsync('evf/held', String(i), { qos: 1 })
    await waitFor('three messages taken without waiting for their writes', () => writes.length === 3, 5000)
    const pubacks = () => sent.filter((p) => p.cmd === 'puback').length
    writes[1]?.resolve()
    await sleep(200)
    assert.equal(pubacks(), 0, 'the second is not acknowledged before the first')
    writes[0]?.resolve()
    await waitFor('the first two PUBACKs', () => pubacks() === 2, 2000)
    // 2.5 keepalive periods with a write outstanding: pings still flow, the connection stays.
    await sleep(2500)
    assert.equal(offline, false, 'the connection survived a write that does not resolve')
    assert.ok(
      sent.some((p) => p.cmd === 'pingreq'),
      'pings went out',
    )
    await sub.endAsync(true)
    writes[2]?.resolve() // after the connection closed: nothing may be sent
    assert.equal(pubacks(), 2, 'no PUBACK after the connection closed')
    // Listening before the CONNACK: the broker sends the session's messages right behind it.
    const again = mqtt.connect(b.url, { ...options, clientId: 'held-acks' })
    t.after(() => again.end(true))
    const redelivered: IPublishPacket[] = []
    again.on('message', (_topic, _payload, packet) => redelivered.push(packet))
    await waitFor('the unacknowledged message again', () => redelivered.length >= 1, 5000)
    await sleep(300)
    assert.deepEqual(
      redelivered.map((p) => [p.payload.toString(), p.dup]),
      [['3', true]],
    )
  })
})
