/**
 * The project's default catalog (catalog/plant.yaml) as tests and benchmarks use it: its topics
 * under a prefix, and its stations. What src/ reads from the database, they read from the file.
 */
import { type CatalogDocument, catalogFromFile, type Station } from '../src/catalog/index.ts'

export const plant = catalogFromFile()

export const stationIds: string[] = plant.stations.map((s) => s.id)

/** A station of the default catalog (throws for another). */
export function station(id: string): Station {
  const s = plant.station(id)
  if (!s) throw new Error(`no station ${id} in catalog/plant.yaml`)
  return s
}

export const topicFor = (id: string, prefix: string): string => plant.topicOf(station(id), prefix)

export const allTopics = (prefix: string): string[] => plant.topicsOf(prefix)

/**
 * The fifth station tests add to the default catalog: a welding cell with three measurements
 * (a current with spec limits, a force, a boolean vision check).
 */
export function weldingCell(
  opts: { usl?: number; target?: number; sensors?: string[] } = {},
): CatalogDocument['lines'][number]['stations'][number] {
  return {
    id: 'welding',
    name: 'Welding cell',
    description: 'Robot spot welding of the side frames.',
    ...(opts.sensors ? { sensors: opts.sensors.map((id) => ({ id })) } : {}),
    measurements: {
      weld_current: {
        type: 'number',
        unit: 'kA',
        description: 'Spot-weld current',
        decimals: 2,
        range: { min: 0, max: 30 },
        spec: { lsl: 8, target: opts.target ?? 10, usl: opts.usl ?? 12 },
        simulation: { nominal: 10, noise: 0.4, drift: 0 },
      },
      electrode_force: {
        type: 'number',
        unit: 'kN',
        description: 'Electrode force',
        decimals: 2,
        range: { min: 0, max: 20 },
        spec: { lsl: 3, target: 4, usl: 5 },
      },
      seam_ok: { type: 'boolean', description: 'The vision check passed the seam' },
    },
  }
}

/** The default catalog's document with the welding cell on line L1. */
export function withWelding(opts: Parameters<typeof weldingCell>[0] = {}): CatalogDocument {
  const d = structuredClone(plant.document)
  d.lines[0]!.stations.push(weldingCell(opts))
  return d
}
