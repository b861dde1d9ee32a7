import type { Catalog, SensorMessage, Station } from '../../catalog/index.ts'
import type { Config } from '../../config/index.ts'
import type { Logger } from '../../shared/log.ts'

/**
 * How the simulator hands readings over when it plays the plant's devices (`simTransport`
 * mqtt, sparkplug or opcua) rather than producing to Kafka itself.
 */
export interface DeviceTransport {
  /**
   * Resolves once the readings are handed over as the transport promises: MQTT QoS 1 messages
   * acknowledged by the broker, Sparkplug data published, OPC UA values set on the server's nodes.
   */
  send(readings: SensorMessage[]): Promise<void>
  /** Stops cleanly: an MQTT client disconnects, a Sparkplug edge node publishes its NDEATH, a server shuts down. */
  close(): Promise<void>
}

export interface TransportOptions {
  config: Config
  /** the catalog simulated now */
  catalog(): Catalog
  /** every sensor the simulator reads, with its station, known before the first reading */
  sensors: readonly { id: string; station: Station }[]
  log: Logger
}

export type OpenTransport = (options: TransportOptions) => Promise<DeviceTransport>
