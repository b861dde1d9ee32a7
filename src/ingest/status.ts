import { type IngestSourceRow, type Pool, recordIngestSources, setSensorStale } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import type { SourcePlan } from './types.ts'

/** What a source counts and says about itself; written to `ingest_sources` every 2 s. */
export class SourceStatus {
  connected = false
  /** messages (or values) received from the devices */
  messagesIn = 0
  /** messages acknowledged to the broker after Kafka acknowledged them */
  acknowledged = 0
  /** readings produced to Kafka */
  produced = 0
  /** values the source says it could not deliver (an OPC UA gap, a Sparkplug seq gap) */
  missed = 0
  lastMessageAt: Date | undefined
  lastError: string | undefined
  stateSince = new Date()

  constructor(readonly plan: SourcePlan) {}

  /** Connected or not: logged once per change, with why. */
  setConnected(connected: boolean, log: Logger, error?: unknown): void {
    if (error !== undefined) this.lastError = error instanceof Error ? error.message : String(error)
    if (connected === this.connected) return
    this.connected = connected
    this.stateSince = new Date()
    if (connected) log.info({ source: this.plan.id, endpoint: this.plan.endpoint }, 'source connected')
    else
      log.warn(
        { source: this.plan.id, endpoint: this.plan.endpoint, err: this.lastError },
        'source disconnected',
      )
  }

  received(count = 1): void {
    this.messagesIn += count
    this.lastMessageAt = new Date()
  }
}

/** How often the sources' state is written (the API's /ready calls a source down after 3 misses). */
export const STATUS_INTERVAL_MS = 2_000

/**
 * Writes every source's state to PostgreSQL every 2 s (a heartbeat: old means no ingest runs it),
 * and sensors declared stale or live. A failed write is logged and tried again at the next tick.
 */
export class StatusRecorder {
  private readonly timer: NodeJS.Timeout
  private writing: Promise<void> = Promise.resolve()

  constructor(
    private readonly pool: Pool,
    readonly sources: SourceStatus[],
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.write(), STATUS_INTERVAL_MS)
    this.timer.unref()
  }

  /** Writes now (after any write in progress). */
  write(): Promise<void> {
    this.writing = this.writing
      .then(() => recordIngestSources(this.pool, this.sources.map(row)))
      .catch((error: unknown) => this.log.warn({ err: String(error) }, 'cannot record the sources’ state'))
    return this.writing
  }

  /** A sensor's values are stale from `since` (a Sparkplug NDEATH or DDEATH), or live again (`stale` false). */
  async sensor(
    station: string,
    sensorId: string,
    stale: boolean,
    since: Date,
    reason: string,
  ): Promise<void> {
    try {
      await setSensorStale(this.pool, { station, sensorId, stale, since, reason })
    } catch (error) {
      this.log.warn({ err: String(error), station, sensorId }, 'cannot record a sensor’s state')
    }
  }

  async close(): Promise<void> {
    clearInterval(this.timer)
    for (const s of this.sources) s.connected = false
    await this.write()
  }
}

const row = (s: SourceStatus): IngestSourceRow => ({
  source: s.plan.id,
  kind: s.plan.kind,
  stations: s.plan.stations.map((f) => f.station.id),
  endpoint: s.plan.endpoint,
  connected: s.connected,
  messagesIn: s.messagesIn,
  acknowledged: s.acknowledged,
  produced: s.produced,
  missed: s.missed,
  lastMessageAt: s.lastMessageAt,
  lastError: s.lastError,
  stateSince: s.stateSince,
})
