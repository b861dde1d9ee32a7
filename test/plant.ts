/**
 * The project's default catalog (catalog/plant.yaml) as tests and benchmarks use it: its topics
 * under a prefix, and its stations. What src/ reads from the database, they read from the file.
 */
import { catalogFromFile, type Station } from '../src/catalog/index.ts'

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
