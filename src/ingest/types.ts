import type { Catalog, SensorMessage, Source, Station } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import type { Logger } from '../shared/log.ts'
import type { KafkaSink } from './sink.ts'
import type { SourceStatus, StatusRecorder } from './status.ts'

/** The three kinds of device connection `evf ingest` speaks. */
export type SourceKind = Source['type']

/** A station fed by a source, and how (the catalog's `source`, or the one the simulator's transport implies). */
export interface FedStation {
  station: Station
  source: Source
}

/**
 * One connection of `evf ingest`: every station whose source is of one kind shares it (one MQTT
 * session for the JSON topics, one Sparkplug host session, one OPC UA session).
 */
export interface SourcePlan {
  /** its name in /metrics, /pipeline/status and `ingest_sources` (the kind) */
  id: SourceKind
  kind: SourceKind
  /** the broker or server URL */
  endpoint: string
  stations: FedStation[]
}

/** What a source is given: where readings go, where it reports, and when to stop. */
export interface IngestContext {
  config: Config
  /** the catalog in force (followed live) */
  catalog(): Catalog
  sink: KafkaSink
  /** this source's counters and state, written to `ingest_sources` every few seconds */
  status: SourceStatus
  /** sensors a source declares stale or live again (Sparkplug deaths and births) */
  recorder: StatusRecorder
  log: Logger
}

/** A started source: stop() ends it cleanly (a Sparkplug host publishes its offline STATE first). */
export interface RunningSource {
  stop(): Promise<void>
}

export type StartSource = (plan: SourcePlan, ctx: IngestContext) => Promise<RunningSource>

/** A reading in our message format, and what the ETL should know about where it came from. */
export interface IngestedReading {
  reading: SensorMessage
  /** the broker redelivered it (MQTT DUP): the ETL checks its natural key before loading it */
  redelivered?: boolean
  /** not good: the source's status (an OPC UA status code); the ETL dead-letters it with this */
  quality?: string
  /**
   * the device's payload as it came, sent as the Kafka value instead of `reading` (which then only
   * routes it: station and sensor): a payload that is not a reading (not JSON, not an object)
   * reaches the ETL as it was, which dead-letters it with its reason
   */
  raw?: Buffer
}
