/**
 * `evf ingest` as a Sparkplug B 3.0 host application (docs/devices.md): one clean MQTT session
 * with the STATE will, every edge node of the plan's groups decoded and followed by
 * sparkplug-state.ts, readings produced to Kafka, rebirths requested, sensors marked stale.
 *
 * Sparkplug data is QoS 0 by the specification: there is nothing to acknowledge after Kafka. A
 * message lost shows as a seq gap, which a rebirth repairs with current values (not history).
 */
import { readFileSync } from 'node:fs'
import { connect, type IClientOptions, type MqttClient } from 'mqtt'
import type { Config } from '../config/index.ts'
import { decodeSparkplug, encodeSparkplug, isSparkplugMessageType } from './sparkplug-codec.ts'
import { type FedNode, type HostEffects, SparkplugHostState, type SpbMessageType } from './sparkplug-state.ts'
import type { IngestContext, SourcePlan, StartSource } from './types.ts'

/** Readings waiting for Kafka beyond which new data is dropped (and later repaired by a rebirth). */
const MAX_WAITING = 50_000

/** The MQTT options every evf client of a broker shares: login, TLS, protocol. */
function mqttLogin(config: Config): IClientOptions {
  return {
    username: config.mqttUsername || undefined,
    password: config.mqttPassword || undefined,
    ...(config.mqttCaFile ? { ca: readFileSync(config.mqttCaFile) } : {}),
    protocolVersion: config.mqttProtocol === '3.1.1' ? 4 : 5,
    reconnectPeriod: 1_000,
    connectTimeout: 10_000,
  }
}

const stateOf = (online: boolean, timestamp: number) => Buffer.from(JSON.stringify({ online, timestamp }))

export const startSparkplug: StartSource = async (plan, ctx) => {
  const { config, log } = ctx
  const stateTopic = `spBv1.0/STATE/${config.sparkplugHostId}`
  const groups = [...new Set(plan.stations.map((f) => (f.source.type === 'sparkplug' ? f.source.group : '')))]
  const state = new SparkplugHostState(fedNode(plan, ctx))
  // The STATE will and the online STATE after it carry the same timestamp: that of the CONNECT.
  let connectedAt = Date.now()
  let stopping = false
  const client = connect(plan.endpoint, {
    ...mqttLogin(config),
    clientId: `${config.mqttClientId}-spb`,
    // The specification requires a clean session (MQTT 5: clean start, session expiry 0).
    clean: true,
    ...(config.mqttProtocol === '3.1.1' ? {} : { properties: { sessionExpiryInterval: 0 } }),
    will: { topic: stateTopic, payload: stateOf(false, connectedAt), qos: 1, retain: true },
  })
  const publishOnline = () =>
    client.publishAsync(stateTopic, stateOf(true, connectedAt), { qos: 1, retain: true })
  client.on('connect', () => {
    state.reset()
    void (async () => {
      await client.subscribeAsync([stateTopic, ...groups.map((g) => `spBv1.0/${g}/#`)], { qos: 1 })
      await publishOnline()
      ctx.status.setConnected(true, log)
    })().catch((error: unknown) => ctx.status.setConnected(false, log, error))
  })
  client.on('close', () => {
    ctx.status.setConnected(false, log)
    if (stopping) return
    connectedAt = Date.now()
    if (client.options.will) client.options.will.payload = stateOf(false, connectedAt)
  })
  client.on('error', (error) => ctx.status.setConnected(false, log, error))
  const act = actor(client, ctx)
  client.on('message', (topic, payload) => {
    const parts = topic.split('/')
    if (topic === stateTopic) {
      // Another session of ours (or a retained leftover) said offline: the specification says to answer online.
      if (!stopping && isOffline(payload)) void publishOnline().catch(() => undefined)
      return
    }
    const [, group, type, node, device] = parts
    if (!group || !node || !type || !isSparkplugMessageType(type)) return
    ctx.status.received()
    const message = decodeSparkplug(type as SpbMessageType, group, node, device, payload)
    if (!message) {
      ctx.status.lastError = `undecodable Sparkplug payload on ${topic}`
      return
    }
    const now = Date.now()
    if (ctx.sink.inFlight > MAX_WAITING && (type === 'NDATA' || type === 'DDATA')) {
      // No room: drop, and make the node's next message ask for a rebirth once Kafka catches up.
      ctx.status.missed += 1
      state.forget(group, node)
      return
    }
    act(group, node, state.handle(message, now))
  })
  return {
    async stop() {
      stopping = true
      // The specification: the offline STATE before DISCONNECT (the will is not sent on a clean one).
      if (client.connected)
        await client
          .publishAsync(stateTopic, stateOf(false, connectedAt), { qos: 1, retain: true })
          .catch((error: unknown) => log.warn({ err: String(error) }, 'cannot publish the offline STATE'))
      await client.endAsync()
      ctx.status.setConnected(false, log)
    },
  }
}

function isOffline(payload: Buffer): boolean {
  try {
    return (JSON.parse(payload.toString()) as { online?: unknown }).online === false
  } catch {
    return false
  }
}

/** The station each edge node of the plan feeds, with the live catalog's measurements. */
function fedNode(plan: SourcePlan, ctx: IngestContext): (group: string, node: string) => FedNode | undefined {
  const byNode = new Map<string, { station: string; metrics: Record<string, string> }>()
  for (const f of plan.stations)
    if (f.source.type === 'sparkplug')
      byNode.set(`${f.source.group}/${f.source.node}`, {
        station: f.station.id,
        metrics: f.source.metrics ?? {},
      })
  return (group, node) => {
    const fed = byNode.get(`${group}/${node}`)
    const station = fed && ctx.catalog().station(fed.station)
    if (!fed || !station) return undefined
    return {
      station: station.id,
      line: station.line.id,
      measurements: station.measurements.map((m) => ({
        name: m.name,
        metric: fed.metrics[m.name] ?? m.name,
      })),
    }
  }
}

/** Carries out what the state machine decided: an NCMD, counters, sensor states, readings to Kafka. */
function actor(client: MqttClient, ctx: IngestContext) {
  const { log } = ctx
  // Sensor states are written in the order decided: a death and the rebirth after it.
  let sensors: Promise<void> = Promise.resolve()
  return (group: string, node: string, effects: HostEffects) => {
    ctx.status.missed += effects.missed
    if (effects.rebirth) {
      log.warn({ group, node, why: effects.rebirth }, 'Sparkplug: asking the edge node for a rebirth')
      const payload = encodeSparkplug({
        timestamp: Date.now(),
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: true }],
      })
      client.publish(`spBv1.0/${group}/NCMD/${node}`, payload, { qos: 0 })
    }
    for (const s of effects.sensors) {
      if (s.stale)
        log.warn({ station: s.station, sensor: s.sensor, reason: s.reason }, 'Sparkplug: sensor stale')
      sensors = sensors.then(() =>
        ctx.recorder.sensor(s.station, s.sensor, s.stale, new Date(s.at), s.reason),
      )
    }
    if (effects.readings.length === 0) return
    const items = effects.readings.map((r) => ({ reading: r.reading, redelivered: r.birth }))
    ctx.sink.send('sparkplug', items).then(
      () => (ctx.status.produced += items.length),
      (error: unknown) => {
        ctx.status.missed += items.length
        ctx.status.lastError = String(error)
        log.error({ err: String(error), readings: items.length }, 'Sparkplug readings not produced')
      },
    )
  }
}
