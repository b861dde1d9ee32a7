import type { Catalog, Station } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { impliedSource } from '../simulator/index.ts'
import type { FedStation, SourceKind, SourcePlan } from './types.ts'

/** The stations the simulator plays (all of the catalog's unless `simStations` names some). */
const simulated = (config: Config, station: Station) =>
  config.simulator && (config.simStations.length === 0 || config.simStations.includes(station.id))

/**
 * What `evf ingest` connects to: one plan per kind of source, with every station fed by it — the
 * catalog's sources, and the ones the simulator's transport implies for the stations it plays
 * and the catalog gives none. A kind without its broker or server URL is CONFIG_INVALID, naming
 * the setting and the stations that need it.
 */
export function planSources(config: Config, catalog: Catalog): SourcePlan[] {
  const fed: FedStation[] = []
  for (const station of catalog.stations) {
    const source = station.source ?? (simulated(config, station) ? impliedSource(config, station) : undefined)
    if (source) fed.push({ station, source })
  }
  const kinds: SourceKind[] = ['mqtt', 'sparkplug', 'opcua']
  return kinds.flatMap((kind) => {
    const stations = fed.filter((f) => f.source.type === kind)
    if (stations.length === 0) return []
    const endpoint = kind === 'opcua' ? config.opcuaUrl : config.mqttUrl
    if (!endpoint) {
      const key = kind === 'opcua' ? 'opcuaUrl (EVF_OPCUA_URL)' : 'mqttUrl (EVF_MQTT_URL)'
      throw new PipelineError(
        'CONFIG_INVALID',
        `${key} is empty but ${stations.map((f) => f.station.id).join(', ')} ${stations.length > 1 ? 'have' : 'has'} a ${kind} source: set it (\`stack up\` sets it for the simulator)`,
      )
    }
    return [{ id: kind, kind, endpoint, stations }]
  })
}
