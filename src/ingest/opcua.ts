/**
 * OPC UA source: one client session and one subscription on the plant's server, a monitored
 * item per catalog node (its sampling interval and deadband), values turned into readings
 * (opcua-readings.ts). node-opcua is heavy (0.5 s, 150 MB); index.ts loads this module only when
 * a station has an OPC UA source.
 */
import { resolve } from 'node:path'
import {
  AttributeIds,
  type ClientMonitoredItemGroup,
  type ClientSession,
  type ClientSubscription,
  DataChangeFilter,
  DataChangeTrigger,
  DataType,
  type DataValue,
  DeadbandType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAClient,
  SecurityPolicy,
  TimestampsToReturn,
  type UserIdentityInfo,
  UserTokenType,
  type Variant,
} from 'node-opcua'
import type { Measurement, OpcuaSource } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { backoff, sleep } from '../shared/time.ts'
import { type NodeTarget, ReadingAssembler } from './opcua-readings.ts'
import type { IngestContext, IngestedReading, SourcePlan, StartSource } from './types.ts'

/** Readings given to the sink and not yet acknowledged by Kafka beyond which new ones are dropped (and counted missed). */
const MAX_IN_FLIGHT = 50_000
const DEFAULT_SAMPLING_MS = 1000

interface Monitored extends NodeTarget {
  samplingMs: number
  /** the source time of its last value, to estimate what a disconnection lost */
  lastTimeMs: number | undefined
  /** the next value is the first after the item was (re)created */
  initial: boolean
  /** when the connection was lost, if the next value follows that: estimate the values missed in between */
  lostAtMs: number | undefined
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])

/** Security None sends values and the password in clear: only to a server on this machine. */
export function checkSecurity(endpoint: string, config: Config): void {
  if (config.opcuaSecurityMode !== 'None') return
  const host = new URL(endpoint.replace(/^opc\.tcp:/, 'http:')).hostname
  if (!LOOPBACK.has(host))
    throw new PipelineError(
      'CONFIG_INVALID',
      `opcuaSecurityMode (EVF_OPCUA_SECURITY_MODE) None is allowed only to a loopback server, not ${host}: use SignAndEncrypt`,
    )
}

/** The client's certificate, and the servers it trusts, under `<dataDir>/opcua/client-pki`. */
async function certificates(config: Config): Promise<OPCUACertificateManager> {
  // Trust on first use: a server's certificate is accepted and stored in trusted/ the first
  // time; to pin one, put it there yourself and remove the others.
  const manager = new OPCUACertificateManager({
    rootFolder: resolve(config.dataDir, 'opcua', 'client-pki'),
    automaticallyAcceptUnknownCertificate: true,
    disableFileWatchers: true,
  })
  await manager.initialize()
  return manager
}

function identity(config: Config): UserIdentityInfo {
  return config.opcuaUsername
    ? { type: UserTokenType.UserName, userName: config.opcuaUsername, password: config.opcuaPassword }
    : { type: UserTokenType.Anonymous }
}

/** A variant as our message holds it: numbers, booleans, strings (an enum's index becomes its name). */
function plain(variant: Variant, m: Measurement | undefined): string | number | boolean | null {
  const v: unknown = variant.value
  if (v === null || v === undefined) return null
  if (variant.dataType === DataType.Int64 || variant.dataType === DataType.UInt64) {
    const [high, low] = v as [number, number]
    return high * 2 ** 32 + low
  }
  if (m?.type === 'enum' && typeof v === 'number') return m.values[v] ?? v
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string') return v
  if (v instanceof Date) return v.toISOString()
  return String(v)
}

export const startOpcua: StartSource = async (plan, ctx) => {
  checkSecurity(plan.endpoint, ctx.config)
  const source = new OpcuaConnection(plan, ctx)
  source.start()
  return { stop: () => source.stop() }
}

/** The session's life: connect (retried until stopped), subscribe, follow node-opcua's reconnections. */
class OpcuaConnection {
  private readonly stopping = new AbortController()
  private readonly items: Monitored[]
  private readonly assembler: ReadingAssembler
  private client: OPCUAClient | undefined
  private session: ClientSession | undefined
  private subscription: ClientSubscription | undefined
  private running: Promise<void> = Promise.resolve()
  private missedSinceReconnect = 0
  private missedReport: NodeJS.Timeout | undefined
  private droppedWarned = false

  constructor(
    private readonly plan: SourcePlan,
    private readonly ctx: IngestContext,
  ) {
    this.items = plan.stations.flatMap(({ station, source }) => {
      const s = source as OpcuaSource
      return s.sensors.flatMap((sensor) =>
        Object.entries(sensor.nodes).map(([measurement, nodeId]) => ({
          station: station.id,
          sensor: sensor.id,
          measurement,
          nodeId,
          samplingMs: s.sampling_interval_ms ?? DEFAULT_SAMPLING_MS,
          lastTimeMs: undefined,
          initial: true,
          lostAtMs: undefined,
        })),
      )
    })
    const sampling = new Map(this.items.map((i) => [i.station, Math.min(i.samplingMs, 1000)]))
    this.assembler = new ReadingAssembler(
      ctx.catalog,
      (station) => sampling.get(station) ?? 0,
      (items) => this.emit(items),
    )
  }

  start(): void {
    this.running = this.connect().catch((error) =>
      this.ctx.log.error({ err: String(error) }, 'OPC UA failed'),
    )
  }

  /** Connects until it works or stop() is called: a plant's server may be down when ingest starts. */
  private async connect(): Promise<void> {
    const { config, log, status } = this.ctx
    const clientCertificateManager = await certificates(config)
    const secure = config.opcuaSecurityMode === 'SignAndEncrypt'
    for (let attempt = 1; !this.stopping.signal.aborted; attempt++) {
      const client = OPCUAClient.create({
        applicationName: 'evf-ingest',
        clientCertificateManager,
        securityMode: secure ? MessageSecurityMode.SignAndEncrypt : MessageSecurityMode.None,
        securityPolicy: secure ? SecurityPolicy.Basic256Sha256 : SecurityPolicy.None,
        endpointMustExist: false,
        keepSessionAlive: true,
        requestedSessionTimeout: 60_000,
        connectionStrategy: { initialDelay: 250, maxDelay: 5_000, maxRetry: Number.MAX_SAFE_INTEGER },
      })
      this.client = client
      try {
        await client.connect(this.plan.endpoint)
        this.session = await client.createSession(identity(config))
        if (this.stopping.signal.aborted) return
        await this.subscribe(this.session)
        this.follow(client)
        status.setConnected(true, log)
        return
      } catch (error) {
        status.setConnected(false, log, error)
        log.error(
          { err: String(error), endpoint: this.plan.endpoint, attempt },
          'cannot connect to the OPC UA server',
        )
        await client.disconnect().catch(() => undefined)
        this.client = undefined
        await sleep(backoff(attempt, 10_000), this.stopping.signal)
      }
    }
  }

  /** node-opcua reconnects by itself and re-creates the subscription (a new id on a restarted server). */
  private follow(client: OPCUAClient): void {
    const { log, status } = this.ctx
    client.on('connection_lost', () => {
      const now = Date.now()
      for (const item of this.items) {
        item.initial = true
        item.lostAtMs ??= now
      }
      status.setConnected(false, log, 'connection to the OPC UA server lost')
    })
    client.on('backoff', (n: number, delay: number) =>
      log.debug({ attempt: n, delayMs: delay }, 'OPC UA reconnection attempt'),
    )
    client.on('connection_reestablished', () => {
      log.info({ subscriptionId: this.subscription?.subscriptionId }, 'OPC UA session and subscription back')
      status.setConnected(true, log)
    })
    this.subscription?.on('subscriptionId_changed', (id: number, previous: number) =>
      log.info({ subscriptionId: id, previous }, 'OPC UA subscription re-created'),
    )
  }

  private async subscribe(session: ClientSession): Promise<void> {
    const fastest = Math.min(...this.items.map((i) => i.samplingMs))
    const subscription = await session.createSubscription2({
      requestedPublishingInterval: Math.max(50, Math.min(fastest, 1000)),
      requestedLifetimeCount: 600,
      requestedMaxKeepAliveCount: 10,
      maxNotificationsPerPublish: 10_000,
      publishingEnabled: true,
      priority: 1,
    })
    this.subscription = subscription
    for (const fed of this.plan.stations) {
      const items = this.items.filter((i) => i.station === fed.station.id)
      if (items.length > 0) await this.monitor(subscription, items, fed.source as OpcuaSource)
    }
  }

  /** One CreateMonitoredItems call per station (they share its sampling and deadband). */
  private async monitor(subscription: ClientSubscription, items: Monitored[], source: OpcuaSource) {
    const deadband = source.deadband
    const filter = new DataChangeFilter({
      trigger: DataChangeTrigger.StatusValue,
      deadbandType: !deadband
        ? DeadbandType.None
        : deadband.type === 'percent'
          ? DeadbandType.Percent
          : DeadbandType.Absolute,
      deadbandValue: deadband?.value ?? 0,
    })
    const group: ClientMonitoredItemGroup = await subscription.monitorItems(
      items.map((i) => ({ nodeId: i.nodeId, attributeId: AttributeIds.Value })),
      {
        samplingInterval: source.sampling_interval_ms ?? DEFAULT_SAMPLING_MS,
        queueSize: 100,
        discardOldest: true,
        filter,
      },
      TimestampsToReturn.Both,
    )
    // monitorItems does not throw for a node it cannot monitor: each item has its own status.
    for (const [index, mi] of group.monitoredItems.entries()) {
      const item = items[index]!
      if (mi.statusCode.isGood()) continue
      const err = `${mi.statusCode.name} (${mi.statusCode.toString()})`
      this.ctx.status.lastError = `cannot monitor ${item.nodeId} (${item.station}/${item.sensor}/${item.measurement}): ${err}`
      this.ctx.log.error(
        { station: item.station, sensor: item.sensor, measurement: item.measurement, node: item.nodeId, err },
        'cannot monitor an OPC UA node',
      )
    }
    group.on('changed', (_mi, dv: DataValue, index: number) => this.changed(items[index]!, dv))
  }

  private changed(item: Monitored, dv: DataValue): void {
    this.ctx.status.received()
    const timeMs = (dv.sourceTimestamp ?? dv.serverTimestamp ?? new Date()).getTime()
    if (item.lostAtMs !== undefined) this.countMissed(item, item.lostAtMs, timeMs)
    item.lastTimeMs = Math.max(item.lastTimeMs ?? 0, timeMs)
    const station = this.ctx.catalog().station(item.station)
    const measurement = station?.measurements.find((m) => m.name === item.measurement)
    const initial = item.initial
    item.initial = false
    this.assembler.value(item, {
      value: plain(dv.value, measurement),
      status: dv.statusCode.value,
      statusName: dv.statusCode.name,
      timeMs,
      initial,
    })
  }

  /**
   * node-opcua does not say what was lost while disconnected. An estimate: the samples the
   * server took between the item's last value (or the loss, if later) and its first one after,
   * by the sampling interval — an upper bound when values change less often than they are
   * sampled; nothing for an exception-based item (sampling interval 0).
   */
  private countMissed(item: Monitored, lostAtMs: number, timeMs: number): void {
    item.lostAtMs = undefined
    if (item.samplingMs <= 0) return
    const from = Math.max(item.lastTimeMs ?? lostAtMs, lostAtMs)
    const missed = Math.max(0, Math.floor((timeMs - from) / item.samplingMs) - 1)
    if (missed === 0) return
    this.ctx.status.missed += missed
    this.missedSinceReconnect += missed
    this.missedReport ??= setTimeout(() => {
      this.ctx.log.warn(
        { source: this.plan.id, missed: this.missedSinceReconnect, estimate: true },
        `missed ${this.missedSinceReconnect} values while disconnected`,
      )
      this.missedSinceReconnect = 0
      this.missedReport = undefined
    }, 1_000)
  }

  private emit(items: IngestedReading[]): void {
    const { sink, status, log } = this.ctx
    if (sink.inFlight >= MAX_IN_FLIGHT) {
      // An OPC UA server cannot be told to wait: past this, readings are dropped and counted.
      status.missed += items.length
      if (!this.droppedWarned)
        log.error({ inFlight: sink.inFlight }, 'Kafka is not keeping up: dropping OPC UA readings')
      this.droppedWarned = true
      return
    }
    this.droppedWarned = false
    sink.send('opcua', items).then(
      () => {
        status.produced += items.length
        status.acknowledged += items.length
      },
      (error: unknown) => {
        status.lastError = String(error)
        log.error({ err: String(error), readings: items.length }, 'Kafka refused OPC UA readings')
      },
    )
  }

  /** Disconnecting also ends a connect() still retrying; a value gathering is emitted before the sink closes. */
  async stop(): Promise<void> {
    this.stopping.abort()
    clearTimeout(this.missedReport)
    await this.subscription?.terminate().catch(() => undefined)
    await this.session?.close().catch(() => undefined)
    this.assembler.flushAll()
    await this.client?.disconnect().catch(() => undefined)
    await this.running
    this.ctx.status.setConnected(false, this.ctx.log)
  }
}
