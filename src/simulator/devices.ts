import type { Source, Station } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { simulatedSensors } from './generator.ts'

/**
 * How the simulator plays the plant's devices (`simTransport` other than kafka): where it
 * publishes or serves each sensor's readings, and the catalog source that reads them back —
 * what a plant would write in its catalog for the same machines (docs/devices.md).
 */

/** The Sparkplug group the simulator's edge nodes publish in (one node per station). */
export const SIM_SPARKPLUG_GROUP = 'evf'

/** The MQTT topic the simulator publishes a sensor's readings on (`--sim-transport mqtt`). */
export const simTopic = (station: Station, sensorId: string): string =>
  `evf/${station.line.id}/${station.id}/${sensorId}`

/** The OPC UA node the simulator's server keeps a sensor's measurement in (`--sim-transport opcua`). */
export const simNodeId = (station: string, sensorId: string, measurement: string): string =>
  `ns=1;s=${station}.${sensorId}.${measurement}`

/**
 * The source a station has when the simulator plays its devices (`simTransport` other than
 * kafka): what a plant would write in its catalog for the same machines.
 */
export function impliedSource(config: Config, station: Station): Source | undefined {
  switch (config.simTransport) {
    case 'kafka':
      return undefined
    case 'mqtt':
      return { type: 'mqtt', topic: `evf/${station.line.id}/${station.id}/+` }
    case 'sparkplug':
      return { type: 'sparkplug', group: SIM_SPARKPLUG_GROUP, node: station.id }
    case 'opcua':
      return {
        type: 'opcua',
        sampling_interval_ms: Math.min(config.simIntervalMs, 1000),
        sensors: simulatedSensors(station, config.simSensorsPerStation).map((id) => ({
          id,
          nodes: Object.fromEntries(
            station.measurements.map((m) => [m.name, simNodeId(station.id, id, m.name)]),
          ),
        })),
      }
  }
}
