/**
 * The Sparkplug B 3.0 host application's view of its edge nodes, as a pure state machine: it is
 * given decoded messages and says what to do (readings to produce, sensors stale or live again,
 * a rebirth to request). No MQTT, no clock: sparkplug.ts feeds it and carries out what it says.
 *
 * Per edge node: an NBIRTH (bdSeq, seq, every node metric with its name and alias) makes it born;
 * a DBIRTH does the same for one device; NDATA/DDATA carry aliases. `seq` runs 0..255 and wraps
 * across NBIRTH, DBIRTH, NDATA, DDATA and DDEATH of the node. A gap, data before a birth or an
 * alias no birth defined means the host no longer knows the node's state: it asks for a rebirth
 * (NCMD `Node Control/Rebirth`) and ignores the node's data until the next NBIRTH, which carries
 * every current value. An NDEATH whose bdSeq is the NBIRTH's kills the node (a stale one, from an
 * earlier connection, is ignored); a DDEATH kills one device.
 */
import type { SensorMessage } from '../catalog/index.ts'

export type MetricValue = number | string | boolean

export interface SpbMetric {
  name?: string | undefined
  alias?: number | undefined
  /** ms since the epoch */
  timestamp?: number | undefined
  /** undefined: a null value (is_null) or a type the host does not read */
  value: MetricValue | undefined
}

export type SpbMessageType = 'NBIRTH' | 'NDEATH' | 'DBIRTH' | 'DDEATH' | 'NDATA' | 'DDATA'

export interface SpbMessage {
  type: SpbMessageType
  group: string
  node: string
  device?: string | undefined
  /** ms since the epoch */
  timestamp?: number | undefined
  seq?: number | undefined
  metrics: SpbMetric[]
}

/** The station an edge node feeds, and which metric feeds each of its measurements. */
export interface FedNode {
  station: string
  line: string
  measurements: readonly { name: string; metric: string }[]
}

export interface SensorChange {
  station: string
  sensor: string
  stale: boolean
  /** ms since the epoch */
  at: number
  reason: string
}

export interface HostEffects {
  /** ask the node for a rebirth, for this reason */
  rebirth?: string
  /** messages lost (a seq gap) or ignored while waiting for a rebirth */
  missed: number
  sensors: SensorChange[]
  /** full readings; `birth`: from a birth, which repeats current values a reading may have carried already */
  readings: { reading: SensorMessage; birth: boolean }[]
}

interface Value {
  value: MetricValue
  ts: number
}

interface EdgeNode {
  born: boolean
  bdSeq: number | undefined
  seq: number
  /** alias → the sensor (device id, or the node id for node metrics) and metric name */
  aliases: Map<number, { sensor: string; name: string }>
  /** devices born since the NBIRTH and not dead since */
  devices: Set<string>
  /** sensor → metric name → last value */
  values: Map<string, Map<string, Value>>
  rebirthAskedAt: number | undefined
}

/** A rebirth asked for and not come is asked again after this long (an NCMD is QoS 0). */
export const REBIRTH_RETRY_MS = 5_000

const NODE_MESSAGES = new Set(['NBIRTH', 'NDEATH', 'NDATA'])

export class SparkplugHostState {
  private readonly nodes = new Map<string, EdgeNode>()
  /** `${station}/${sensor}` → the newest reading time produced, and the readings produced */
  private readonly produced = new Map<string, { ts: number; seq: number }>()

  constructor(private readonly fed: (group: string, node: string) => FedNode | undefined) {}

  /** Forgets every node (a new MQTT session: what was missed meanwhile is unknown). */
  reset(): void {
    this.nodes.clear()
  }

  /** Forgets one node: its next message asks for a rebirth (readings dropped for lack of room). */
  forget(group: string, node: string): void {
    this.nodes.delete(`${group}/${node}`)
  }

  handle(msg: SpbMessage, now: number): HostEffects {
    const effects: HostEffects = { missed: 0, sensors: [], readings: [] }
    const fed = this.fed(msg.group, msg.node)
    if (!fed || NODE_MESSAGES.has(msg.type) === (msg.device !== undefined)) return effects
    const key = `${msg.group}/${msg.node}`
    if (msg.type === 'NBIRTH') {
      this.nodeBirth(key, msg, fed, now, effects)
      return effects
    }
    const node = this.nodes.get(key)
    if (msg.type === 'NDEATH') {
      // After a gap the node is no longer born, but its NBIRTH's bdSeq still names its connection.
      if (node?.bdSeq !== undefined && bdSeqOf(msg) === node.bdSeq)
        this.nodeDeath(node, msg, fed, now, effects)
      return effects
    }
    if (!node?.born) return this.askRebirth(key, now, effects, `${msg.type} before an NBIRTH`, 1)
    const expected = (node.seq + 1) % 256
    if (msg.seq !== expected) {
      node.born = false
      // the messages lost, and this one, ignored
      const gap = msg.seq === undefined ? 0 : (msg.seq - expected + 256) % 256
      return this.askRebirth(key, now, effects, `seq ${msg.seq} where ${expected} was due`, gap + 1)
    }
    node.seq = expected
    if (msg.type === 'DBIRTH') this.deviceBirth(node, msg, fed, now, effects)
    else if (msg.type === 'DDEATH') this.deviceDeath(node, msg, fed, now, effects)
    else {
      const sensor = msg.device ?? msg.node
      if (msg.device !== undefined && !node.devices.has(msg.device))
        return this.askRebirth(key, now, effects, `DDATA of ${msg.device} before its DBIRTH`, 1)
      const updated = this.apply(node, sensor, msg, now)
      if (updated === undefined)
        return this.askRebirth(key, now, effects, 'a metric alias no birth defined', 1)
      if (updated > 0) this.emit(node, sensor, fed, false, updated, effects)
    }
    return effects
  }

  private askRebirth(
    key: string,
    now: number,
    effects: HostEffects,
    why: string,
    missed: number,
  ): HostEffects {
    let node = this.nodes.get(key)
    if (!node) {
      node = {
        born: false,
        bdSeq: undefined,
        seq: 0,
        aliases: new Map(),
        devices: new Set(),
        values: new Map(),
        rebirthAskedAt: undefined,
      }
      this.nodes.set(key, node)
    }
    effects.missed += missed
    if (node.rebirthAskedAt === undefined || now - node.rebirthAskedAt >= REBIRTH_RETRY_MS) {
      node.rebirthAskedAt = now
      effects.rebirth = why
    }
    return effects
  }

  private nodeBirth(key: string, msg: SpbMessage, fed: FedNode, now: number, effects: HostEffects): void {
    const node: EdgeNode = {
      born: true,
      bdSeq: bdSeqOf(msg),
      seq: msg.seq ?? 0,
      aliases: new Map(),
      devices: new Set(),
      values: new Map(),
      rebirthAskedAt: undefined,
    }
    this.nodes.set(key, node)
    this.birth(node, msg.node, msg, fed, now, effects)
  }

  private deviceBirth(
    node: EdgeNode,
    msg: SpbMessage,
    fed: FedNode,
    now: number,
    effects: HostEffects,
  ): void {
    const device = msg.device as string
    node.devices.add(device)
    for (const [alias, target] of node.aliases) if (target.sensor === device) node.aliases.delete(alias)
    this.birth(node, device, msg, fed, now, effects)
  }

  /** A birth defines the sensor's metrics and aliases and carries all its current values. */
  private birth(
    node: EdgeNode,
    sensor: string,
    msg: SpbMessage,
    fed: FedNode,
    now: number,
    effects: HostEffects,
  ): void {
    const values = new Map<string, Value>()
    const fallback = msg.timestamp ?? now
    for (const m of msg.metrics) {
      if (m.name === undefined) continue
      if (m.alias !== undefined) node.aliases.set(m.alias, { sensor, name: m.name })
      if (m.value !== undefined) values.set(m.name, { value: m.value, ts: m.timestamp ?? fallback })
    }
    node.values.set(sensor, values)
    // The node itself is a sensor only when its own metrics feed the station.
    if (msg.device === undefined && !fed.measurements.some((x) => values.has(x.metric))) return
    effects.sensors.push({ station: fed.station, sensor, stale: false, at: fallback, reason: `${msg.type}` })
    const newest = Math.max(0, ...[...values.values()].map((v) => v.ts))
    this.emit(node, sensor, fed, true, newest, effects)
  }

  private nodeDeath(node: EdgeNode, msg: SpbMessage, fed: FedNode, now: number, effects: HostEffects): void {
    const reason = `NDEATH bdSeq ${node.bdSeq}`
    node.born = false
    // a second NDEATH with the same bdSeq is ignored
    node.bdSeq = undefined
    const sensors = [...node.devices]
    if (fed.measurements.some((x) => node.values.get(msg.node)?.has(x.metric))) sensors.push(msg.node)
    for (const sensor of sensors)
      effects.sensors.push({ station: fed.station, sensor, stale: true, at: now, reason })
    node.devices.clear()
  }

  private deviceDeath(
    node: EdgeNode,
    msg: SpbMessage,
    fed: FedNode,
    now: number,
    effects: HostEffects,
  ): void {
    const device = msg.device as string
    if (!node.devices.delete(device)) return
    effects.sensors.push({
      station: fed.station,
      sensor: device,
      stale: true,
      at: msg.timestamp ?? now,
      reason: 'DDEATH',
    })
  }

  /** Applies a data message's values; the newest time among them, 0 for none, undefined for an unknown alias. */
  private apply(node: EdgeNode, sensor: string, msg: SpbMessage, now: number): number | undefined {
    const values = node.values.get(sensor) ?? new Map<string, Value>()
    node.values.set(sensor, values)
    let newest = 0
    for (const m of msg.metrics) {
      const target = m.alias !== undefined ? node.aliases.get(m.alias) : undefined
      const name = target ? target.name : m.name
      if (name === undefined || (target && target.sensor !== sensor)) return undefined
      const ts = m.timestamp ?? msg.timestamp ?? now
      if (m.value === undefined) values.delete(name)
      else values.set(name, { value: m.value, ts })
      newest = Math.max(newest, ts)
    }
    return newest
  }

  /** A full reading of the sensor when every measurement has a value; a birth's only if newer than the last. */
  private emit(
    node: EdgeNode,
    sensor: string,
    fed: FedNode,
    birth: boolean,
    ts: number,
    effects: HostEffects,
  ): void {
    const values = node.values.get(sensor)
    const fields: Record<string, MetricValue> = {}
    for (const m of fed.measurements) {
      const v = values?.get(m.metric)
      if (v === undefined) return
      fields[m.name] = v.value
    }
    const key = `${fed.station}/${sensor}`
    const last = this.produced.get(key)
    if (birth && last && ts <= last.ts) return
    const seq = (last?.seq ?? 0) + 1
    this.produced.set(key, { ts: Math.max(ts, last?.ts ?? 0), seq })
    effects.readings.push({
      reading: {
        station: fed.station,
        timestamp: ts / 1000,
        sensor_id: sensor,
        line: fed.line,
        seq,
        ...fields,
      },
      birth,
    })
  }
}

function bdSeqOf(msg: SpbMessage): number | undefined {
  const v = msg.metrics.find((m) => m.name === 'bdSeq')?.value
  return typeof v === 'number' ? v : undefined
}
