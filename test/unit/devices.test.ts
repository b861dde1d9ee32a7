/**
 * The devices' side that needs no broker: sources in the catalog and their checks, what `evf
 * ingest` plans to connect to (the catalog's sources and the ones the simulator's transport
 * implies), and how the ETL reads ingest's headers (a bad quality is a dead letter; a device's
 * reading keeps its natural key).
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Catalog, type CatalogDocument, checkCatalog, type SourceRecord } from '../../src/catalog/index.ts'
import { loadConfig, type Overrides } from '../../src/config/index.ts'
import { transformRecord, type ValidationPolicy } from '../../src/etl/index.ts'
import { planSources } from '../../src/ingest/index.ts'
import { simNodeId } from '../../src/simulator/index.ts'
import { plant } from '../plant.ts'

const doc = (): CatalogDocument => structuredClone(plant.document)
const paintOf = (d: CatalogDocument) => d.lines[0]!.stations[2]!
const config = (o: Overrides = {}) => loadConfig(o, {})
const problems = (d: CatalogDocument) => {
  const c = checkCatalog(d)
  return c.ok ? [] : c.problems.map((p) => `${p.path}: ${p.message}`)
}

describe('sources in the catalog', () => {
  it('takes each kind, and a catalog without any is unchanged', () => {
    const d = doc()
    d.lines[0]!.stations[0]!.source = { type: 'mqtt', topic: 'plant/chassis/+' }
    d.lines[0]!.stations[1]!.source = {
      type: 'sparkplug',
      group: 'L1',
      node: 'battery-edge',
      metrics: { module_temp: 'Temp' },
    }
    paintOf(d).source = {
      type: 'opcua',
      deadband: { type: 'absolute', value: 0.2 },
      sensors: [
        {
          id: 'booth-1',
          nodes: { booth_temp: 'ns=2;s=T', booth_humidity: 'ns=2;s=H', paint_thickness: 'ns=2;s=P' },
        },
      ],
    }
    assert.deepEqual(problems(d), [])
    assert.deepEqual(new Catalog(d).station('chassis')?.source, { type: 'mqtt', topic: 'plant/chassis/+' })
    assert.equal(plant.station('chassis')?.source, undefined)
  })

  it('names a mapped measurement that does not exist, and one an OPC UA sensor leaves out', () => {
    const d = doc()
    paintOf(d).source = {
      type: 'opcua',
      sensors: [{ id: 'booth-1', nodes: { booth_temp: 'ns=2;s=T', booth_tmp: 'x' } }],
    }
    d.lines[0]!.stations[1]!.source = { type: 'sparkplug', group: 'g', node: 'n', metrics: { voltage: 'V' } }
    const found = problems(d)
    assert.ok(
      found.some((p) =>
        p.startsWith('/lines/0/stations/2/source/sensors/0/nodes/booth_tmp: no measurement "booth_tmp"'),
      ),
      found.join('\n'),
    )
    assert.ok(
      found.some((p) =>
        p.includes(
          '/source/sensors/0/nodes: a reading carries every measurement: give a node for booth_humidity, paint_thickness',
        ),
      ),
      found.join('\n'),
    )
    assert.ok(
      found.some((p) => p.startsWith('/lines/0/stations/1/source/metrics/voltage: no measurement "voltage"')),
      found.join('\n'),
    )
  })

  it('refuses an unknown kind and a Sparkplug id with a topic wildcard', () => {
    const d = doc()
    Object.assign(paintOf(d), { source: { type: 'modbus' } })
    d.lines[0]!.stations[1]!.source = { type: 'sparkplug', group: 'g/#', node: 'n' }
    const found = problems(d)
    assert.ok(
      found.some((p) => p.startsWith('/lines/0/stations/2/source')),
      found.join('\n'),
    )
    assert.ok(
      found.some((p) => p.startsWith('/lines/0/stations/1/source/group')),
      found.join('\n'),
    )
  })
})

describe('planSources', () => {
  it('plans nothing for the default catalog with the simulator producing to Kafka', () => {
    assert.deepEqual(planSources(config(), plant), [])
  })

  it('gives one connection per kind, with every station the simulator plays over it', () => {
    const plans = planSources(config({ simTransport: 'sparkplug', mqttUrl: 'mqtt://127.0.0.1:1883' }), plant)
    assert.equal(plans.length, 1)
    assert.equal(plans[0]!.kind, 'sparkplug')
    assert.deepEqual(
      plans[0]!.stations.map((f) => f.source),
      plant.stations.map((s) => ({ type: 'sparkplug', group: 'evf', node: s.id })),
    )
  })

  it('implies OPC UA nodes for every simulated sensor and measurement', () => {
    const plans = planSources(
      config({
        simTransport: 'opcua',
        opcuaUrl: 'opc.tcp://127.0.0.1:4840',
        simSensorsPerStation: 2,
        simStations: 'paint',
      }),
      plant,
    )
    const source = plans[0]!.stations[0]!.source
    assert.equal(plans[0]!.stations.length, 1)
    assert.ok(source.type === 'opcua')
    assert.deepEqual(
      source.sensors.map((s) => s.id),
      ['paint-01', 'paint-02'],
    )
    assert.equal(source.sensors[1]!.nodes.booth_temp, simNodeId('paint', 'paint-02', 'booth_temp'))
  })

  it('keeps a station’s own source over the transport’s, and needs the broker’s URL', () => {
    const d = doc()
    paintOf(d).source = { type: 'mqtt', topic: 'plant/paint/+' }
    const catalog = new Catalog(d)
    assert.throws(
      () => planSources(config(), catalog),
      /mqttUrl \(EVF_MQTT_URL\) is empty but paint has a mqtt source/,
    )
    const plans = planSources(
      config({ simTransport: 'opcua', opcuaUrl: 'opc.tcp://h:4840', mqttUrl: 'mqtt://h' }),
      catalog,
    )
    assert.deepEqual(
      plans.map((p) => [p.kind, p.stations.map((f) => f.station.id)]),
      [
        ['mqtt', ['paint']],
        ['opcua', ['chassis', 'battery', 'quality']],
      ],
    )
  })
})

describe('the ETL and ingest’s headers', () => {
  const NOW = 1_767_225_600
  const policy: ValidationPolicy = {
    catalog: plant,
    topicPrefix: 'sensor.',
    nowSec: NOW,
    maxAgeSec: 30 * 86_400,
    futureToleranceSec: 300,
    maxBytes: 65_536,
  }
  const value = {
    station: 'paint',
    sensor_id: 'booth-1',
    timestamp: NOW - 1,
    booth_temp: 22,
    booth_humidity: 60,
    paint_thickness: 1.1,
  }
  const record = (headers: Record<string, string>): SourceRecord => ({
    topic: 'sensor.paint',
    partition: 0,
    offset: 7n,
    key: Buffer.from('booth-1'),
    value: Buffer.from(JSON.stringify(value)),
    headers: new Map(Object.entries(headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
  })

  it('dead-letters a reading whose source said it is not good, with the status', () => {
    const r = transformRecord(
      record({ 'evf-source': 'opcua', 'evf-quality': 'Bad 0x808C0000 BadSensorFailure' }),
      policy,
      'x',
    )
    assert.ok(!r.ok)
    assert.equal(r.rejection.reasonCode, 'BAD_QUALITY')
    assert.match(r.rejection.reason, /Bad 0x808C0000 BadSensorFailure/)
  })

  it('keeps a device reading’s sensor for its natural key, and marks a redelivery', () => {
    const first = transformRecord(record({ 'evf-source': 'mqtt' }), policy, 'x')
    const again = transformRecord(record({ 'evf-source': 'mqtt', 'evf-redelivered': '1' }), policy, 'x')
    const plain = transformRecord(record({}), policy, 'x')
    assert.ok(first.ok && again.ok && plain.ok)
    assert.equal(first.row.sensorId, 'booth-1')
    assert.equal(first.row.redelivered, undefined)
    assert.equal(again.row.redelivered, true)
    assert.equal(plain.row.sensorId, undefined)
  })
})
