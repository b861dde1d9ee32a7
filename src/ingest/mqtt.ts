/**
 * MQTT topics carrying readings in our JSON message format (catalog `source: {type: mqtt, topic}`):
 * one client, QoS 1, a persistent session under a stable client id, and each message's PUBACK
 * sent only after Kafka acknowledged its reading (mqtt-acks.ts). A `kill -9` loses nothing: the
 * broker redelivers what was not acknowledged, marked DUP, and the ETL stores it once by its
 * natural key (docs/devices.md).
 */
import { readFileSync } from 'node:fs'
import mqtt, { type IClientOptions, type IPublishPacket, type MqttClient } from 'mqtt'
import type { SensorMessage, Station } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { HELD, HeldAcks } from './mqtt-acks.ts'
import type { IngestContext, IngestedReading, SourcePlan, StartSource } from './types.ts'

/** How long the broker keeps the session (subscriptions and backlog) while ingest is away: a long weekend. */
const SESSION_EXPIRY_S = 4 * 24 * 3600
/** How long stop() waits for Kafka to acknowledge what is in flight before it disconnects anyway. */
const STOP_GRACE_MS = 10_000

/** The connection options of the plant's broker for `evf ingest` (MQTT 5 or 3.1.1, persistent session). */
export function ingestOptions(config: Config): IClientOptions {
  const v5 = config.mqttProtocol === '5'
  return {
    clientId: config.mqttClientId,
    protocolVersion: v5 ? 5 : 4,
    clean: false,
    ...(v5 && {
      properties: { sessionExpiryInterval: SESSION_EXPIRY_S, receiveMaximum: config.mqttMaxInflight },
    }),
    username: config.mqttUsername || undefined,
    password: config.mqttPassword || undefined,
    ...(config.mqttCaFile && { ca: readFileSync(config.mqttCaFile) }),
    reconnectPeriod: 1000,
    connectTimeout: 10_000,
    // The subscriptions are the session's: sent once per process start (subscribe() below).
    resubscribe: true,
  }
}

/** An MQTT topic filter (`+` one level, `#` the rest) matched against a topic name. */
export function topicMatches(filter: string, topic: string): boolean {
  const f = filter.split('/')
  const t = topic.split('/')
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '#') return i > 0 || !topic.startsWith('$')
    if (i >= t.length) return false
    if (f[i] === '+') {
      if (i === 0 && topic.startsWith('$')) return false
    } else if (f[i] !== t[i]) return false
  }
  return f.length === t.length
}

/**
 * A message as a reading for the station its topic maps to. A JSON object gets `station` (the
 * mapped one) and `sensor_id` (the last topic level) when it has none; anything else — not JSON,
 * not an object, another station, a `sensor_id` that is not a string — goes to the mapped
 * station's topic as it came, and the ETL dead-letters it with its reason.
 */
export function toIngested(topic: string, payload: Buffer, station: Station): IngestedReading {
  const fromTopic = topic.slice(topic.lastIndexOf('/') + 1)
  const routing: SensorMessage = {
    station: station.id,
    sensor_id: fromTopic,
    line: station.line.id,
    seq: 0,
    timestamp: 0,
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(payload.toString('utf8'))
  } catch {
    return { reading: routing, raw: payload }
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    return { reading: routing, raw: payload }
  const reading = parsed as SensorMessage
  const hasStation = reading.station !== undefined
  const hasSensor = reading.sensor_id !== undefined
  if ((hasStation && reading.station !== station.id) || (hasSensor && typeof reading.sensor_id !== 'string'))
    return { reading: routing, raw: payload }
  if (hasStation && hasSensor) return { reading, raw: payload }
  reading.station = station.id
  reading.sensor_id ??= fromTopic
  return { reading }
}

/** Runs the MQTT source of `plan` until stop(): see the file's comment. */
export const startMqtt: StartSource = async (plan, ctx) => {
  const routes = plan.stations.flatMap(({ station, source }) =>
    source.type === 'mqtt' ? [{ filter: source.topic, station }] : [],
  )
  const client = mqtt.connect(plan.endpoint, ingestOptions(ctx.config))
  const acks = new HeldAcks(client, () => ctx.status.acknowledged++)
  let stopping = false
  client.handleMessage = (packet, callback) => {
    if (stopping) return callback(HELD) // not taken: the broker keeps it for the next session
    ctx.status.received()
    const write = produce(packet as IPublishPacket, routes, ctx)
    if (packet.qos === 0) return callback()
    acks.hold(packet.messageId as number, write)
    callback(HELD)
  }
  watch(client, plan, ctx)
  // Not awaited: a broker that is away at start is waited for by the client, not by ingest's start.
  client.once('connect', () => {
    subscribe(client, routes, ctx).catch((error: unknown) => {
      ctx.status.lastError = String(error)
      ctx.log.error({ source: plan.id, err: String(error) }, 'MQTT subscriptions refused: nothing is read')
    })
  })
  return {
    async stop() {
      stopping = true
      await acks.drain(STOP_GRACE_MS)
      if (acks.pending > 0)
        ctx.log.warn(
          { pending: acks.pending },
          'MQTT messages not acknowledged at stop: the broker redelivers them',
        )
      await client.endAsync()
      ctx.status.setConnected(false, ctx.log)
    },
  }
}

/** Produces one message's reading; resolves when Kafka acknowledged it, rejects (logged) if it cannot. */
function produce(
  packet: IPublishPacket,
  routes: { filter: string; station: Station }[],
  ctx: IngestContext,
): Promise<void> {
  const route = routes.find((r) => topicMatches(r.filter, packet.topic))
  if (!route) {
    // A subscription the session kept from an older catalog: nothing maps it to a station.
    ctx.log.warn({ topic: packet.topic }, 'MQTT message on a topic no station maps: acknowledged, not loaded')
    ctx.status.missed++
    return Promise.resolve()
  }
  const item = toIngested(packet.topic, packet.payload as Buffer, route.station)
  // A retained message comes again with each new subscription: the ETL loads it only if it is new.
  item.redelivered = packet.dup || packet.retain
  return ctx.sink.send('mqtt', [item]).then(
    () => {
      ctx.status.produced++
    },
    (error: unknown) => {
      ctx.status.lastError = String(error)
      ctx.log.error(
        { err: String(error), topic: packet.topic },
        'Kafka refused an MQTT reading: not acknowledged',
      )
      throw error
    },
  )
}

/** Connection state into the source's status, and each failure said once. */
function watch(client: MqttClient, plan: SourcePlan, ctx: IngestContext): void {
  client.on('connect', (connack) => {
    ctx.status.setConnected(true, ctx.log)
    // No session: what the broker held for ingest (if anything) is gone; say so rather than hide it.
    if (!connack.sessionPresent)
      ctx.log.info(
        { source: plan.id, clientId: ctx.config.mqttClientId },
        'MQTT session new (none was present)',
      )
  })
  client.on('close', () => ctx.status.setConnected(false, ctx.log))
  client.on('offline', () => ctx.status.setConnected(false, ctx.log))
  client.on('error', (error) => {
    ctx.status.setConnected(false, ctx.log, error)
    ctx.log.warn({ source: plan.id, err: error.message }, 'MQTT error')
  })
}

/**
 * Subscribes to every mapped filter at QoS 1 once connected, each process start: idempotent on a
 * session that has them, and it picks up filters the catalog added. With MQTT 5, retained
 * messages come only for a new subscription (Retain Handling 1); with 3.1.1 they come again, and
 * are produced as redeliveries.
 */
async function subscribe(
  client: MqttClient,
  routes: { filter: string }[],
  ctx: IngestContext,
): Promise<void> {
  const filters = [...new Set(routes.map((r) => r.filter))]
  const granted = await client.subscribeAsync(
    Object.fromEntries(filters.map((f) => [f, { qos: 1 as const, rh: 1 }])),
  )
  const refused = granted.filter((g) => g.qos > 2)
  if (refused.length > 0)
    throw new PipelineError(
      'CONFIG_INVALID',
      `the MQTT broker refused the subscriptions ${refused.map((g) => g.topic).join(', ')}: check the user’s ACL`,
    )
  ctx.log.info({ filters }, 'MQTT subscribed (QoS 1, persistent session)')
}
