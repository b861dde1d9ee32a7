/**
 * The simulator as Sparkplug B 3.0 edge nodes (`--sim-transport sparkplug`): one MQTT client per
 * station, edge node id = the station id in group SIM_SPARKPLUG_GROUP, a device per sensor.
 * NDEATH will with bdSeq, NBIRTH (seq 0), a DBIRTH per sensor with its first reading (births
 * carry current values), then DDATA by alias. A rebirth request (NCMD) or the host coming online
 * again is answered with an NBIRTH and every DBIRTH. Data is QoS 0, as the specification says.
 */
import { readFileSync } from 'node:fs'
import { connect, type MqttClient } from 'mqtt'
import sparkplugPayload from 'sparkplug-payload'
import type { Catalog, SensorMessage, Station } from '../../catalog/index.ts'
import type { Config } from '../../config/index.ts'
import type { Logger } from '../../shared/log.ts'
import { SIM_SPARKPLUG_GROUP } from '../devices.ts'
import type { OpenTransport } from './types.ts'

const codec = sparkplugPayload.get('spBv1.0')!
type Payload = Parameters<typeof codec.encodePayload>[0]
type Metric = NonNullable<Payload['metrics']>[number]

/** How long an edge node waits for the host application's online STATE before its births. */
const HOST_WAIT_MS = 10_000

const SPB_TYPES = { number: 'Double', integer: 'Int64', enum: 'String', boolean: 'Boolean' } as const

class SimEdgeNode {
  private readonly client: MqttClient
  // Not persisted across runs: a random start keeps an old run's late NDEATH from matching.
  private bdSeq = Math.floor(Math.random() * 256)
  private seq = 0
  private readonly aliases = new Map<string, number>()
  /** each sensor's newest reading (what a birth repeats); a sensor in it has had its DBIRTH */
  private readonly last = new Map<string, SensorMessage>()
  private born = false
  private hostOnline = false
  private closing = false
  private readonly hostSeen: Promise<void>
  private readonly base: string

  constructor(
    config: Config,
    private readonly station: Station,
    sensors: readonly string[],
    private readonly catalog: () => Catalog,
    private readonly log: Logger,
  ) {
    this.base = `spBv1.0/${SIM_SPARKPLUG_GROUP}`
    let alias = 1
    for (const s of sensors) for (const m of station.measurements) this.aliases.set(`${s}/${m.name}`, alias++)
    const stateTopic = `spBv1.0/STATE/${config.sparkplugHostId}`
    this.client = connect(config.mqttUrl, {
      clientId: `evf-sim-spb-${station.id}`,
      username: config.mqttUsername || undefined,
      password: config.mqttPassword || undefined,
      ...(config.mqttCaFile ? { ca: readFileSync(config.mqttCaFile) } : {}),
      protocolVersion: config.mqttProtocol === '3.1.1' ? 4 : 5,
      clean: true,
      reconnectPeriod: 1_000,
      // Data published while disconnected is lost, as Sparkplug's QoS 0 is: the births after the reconnect repair it.
      queueQoSZero: false,
      will: { topic: `${this.base}/NDEATH/${station.id}`, payload: this.death(), qos: 1, retain: false },
    })
    let seen: () => void = () => undefined
    this.hostSeen = new Promise((resolve) => {
      seen = resolve
    })
    this.client.on('connect', () => {
      this.born = false
      void this.client
        .subscribeAsync([`${this.base}/NCMD/${station.id}`, stateTopic], { qos: 1 })
        .then(() => (this.hostOnline ? this.births() : undefined))
        .catch((e: unknown) => log.warn({ err: String(e) }, 'Sparkplug edge node: cannot subscribe'))
    })
    this.client.on('close', () => {
      if (this.closing) return
      // A new connection is a new bdSeq, in its will and the NBIRTH after it.
      this.bdSeq = (this.bdSeq + 1) % 256
      if (this.client.options.will) this.client.options.will.payload = this.death()
    })
    this.client.on('error', (e) =>
      log.warn({ err: e.message, node: station.id }, 'Sparkplug edge node error'),
    )
    this.client.on('message', (topic, bytes) => {
      if (topic === stateTopic) {
        const online = parseOnline(bytes)
        if (online && !this.hostOnline && this.client.connected) this.births()
        this.hostOnline = online
        if (online) seen()
      } else if (rebirthAsked(bytes)) {
        log.info({ node: station.id }, 'Sparkplug edge node: rebirth asked')
        this.births()
      }
    })
  }

  /** Waits for the host application's online STATE (or HOST_WAIT_MS), then publishes the births. */
  async ready(): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), HOST_WAIT_MS)
    })
    const online = await Promise.race([this.hostSeen.then(() => true), timeout])
    clearTimeout(timer)
    if (!online) {
      this.log.warn(
        { node: this.station.id },
        'no Sparkplug host application online: publishing births anyway',
      )
      this.births()
    }
  }

  private death(): Buffer {
    return encode({ timestamp: Date.now(), metrics: [{ name: 'bdSeq', type: 'Int64', value: this.bdSeq }] })
  }

  private publish(type: string, device: string | undefined, payload: Payload): Promise<void> {
    const topic = `${this.base}/${type}/${this.station.id}${device ? `/${device}` : ''}`
    this.seq = type === 'NBIRTH' ? 0 : (this.seq + 1) % 256
    payload.seq = this.seq
    return new Promise((resolve) => this.client.publish(topic, encode(payload), { qos: 0 }, () => resolve()))
  }

  /** NBIRTH and the DBIRTH of every sensor that has a reading. */
  births(): void {
    if (!this.client.connected) return
    this.born = true
    void this.publish('NBIRTH', undefined, {
      timestamp: Date.now(),
      metrics: [
        { name: 'bdSeq', type: 'Int64', value: this.bdSeq },
        // Without an alias, as the specification requires of it.
        { name: 'Node Control/Rebirth', type: 'Boolean', value: false },
      ],
    })
    for (const reading of this.last.values()) void this.deviceMessage('DBIRTH', reading)
  }

  private deviceMessage(type: 'DBIRTH' | 'DDATA', reading: SensorMessage): Promise<void> {
    const station = this.catalog().station(this.station.id) ?? this.station
    const timestamp = Math.round(reading.timestamp * 1000)
    const metrics: Metric[] = []
    for (const m of station.measurements) {
      const alias = this.aliases.get(`${reading.sensor_id}/${m.name}`)
      const value = reading[m.name]
      if (alias === undefined || value === undefined) continue
      metrics.push(
        type === 'DBIRTH'
          ? { name: m.name, alias, type: SPB_TYPES[m.type], value, timestamp }
          : { alias, type: SPB_TYPES[m.type], value, timestamp },
      )
    }
    return this.publish(type, reading.sensor_id, { timestamp, metrics })
  }

  /** A reading: the sensor's DBIRTH if it has none yet, else DDATA. Resolves when written to the socket. */
  send(reading: SensorMessage): Promise<void> {
    const known = this.last.has(reading.sensor_id)
    this.last.set(reading.sensor_id, reading)
    if (!this.born) return Promise.resolve()
    return this.deviceMessage(known ? 'DDATA' : 'DBIRTH', reading)
  }

  async close(): Promise<void> {
    this.closing = true
    if (this.client.connected)
      await this.client
        .publishAsync(`${this.base}/NDEATH/${this.station.id}`, this.death(), { qos: 1 })
        .catch(() => undefined)
    await this.client.endAsync()
  }
}

function encode(payload: Payload): Buffer {
  return Buffer.from(codec.encodePayload(payload))
}

function parseOnline(bytes: Buffer): boolean {
  try {
    return (JSON.parse(bytes.toString()) as { online?: unknown }).online === true
  } catch {
    return false
  }
}

function rebirthAsked(bytes: Buffer): boolean {
  try {
    const metrics = codec.decodePayload(bytes).metrics ?? []
    return metrics.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)
  } catch {
    return false
  }
}

export const open: OpenTransport = async ({ config, catalog, sensors, log }) => {
  const byStation = new Map<string, { station: Station; ids: string[] }>()
  for (const s of sensors) {
    const entry = byStation.get(s.station.id) ?? { station: s.station, ids: [] }
    entry.ids.push(s.id)
    byStation.set(s.station.id, entry)
  }
  const nodes = new Map<string, SimEdgeNode>()
  for (const [id, { station, ids }] of byStation)
    nodes.set(id, new SimEdgeNode(config, station, ids, catalog, log))
  await Promise.all([...nodes.values()].map((n) => n.ready()))
  log.info({ nodes: nodes.size, group: SIM_SPARKPLUG_GROUP }, 'Sparkplug edge nodes born')
  return {
    async send(readings) {
      const written: Promise<void>[] = []
      for (const r of readings) {
        const node = nodes.get(r.station)
        if (node) written.push(node.send(r))
      }
      await Promise.all(written)
    },
    async close() {
      await Promise.all([...nodes.values()].map((n) => n.close()))
    },
  }
}
