import { type Field, type StationName, stationNames, stations } from './stations.ts'

export type { SensorMessage, SourceRecord } from './message.ts'
export type { EnumField, Field, NumericField, Station, StationName } from './stations.ts'
export { stationNames, stations } from './stations.ts'

export function isStationName(value: unknown): value is StationName {
  return typeof value === 'string' && Object.hasOwn(stations, value)
}

/** Kafka topic for a station: `sensor.<station>` with a configurable prefix. */
export function topicFor(station: StationName, prefix: string): string {
  return `${prefix}${station}`
}

/** The station a topic carries, or undefined for a topic that is not ours. */
export function stationForTopic(topic: string, prefix: string): StationName | undefined {
  if (!topic.startsWith(prefix)) return undefined
  const name = topic.slice(prefix.length)
  return isStationName(name) ? name : undefined
}

export function fieldEntries(station: StationName): [string, Field][] {
  return Object.entries(stations[station].fields)
}

/**
 * Per station, the field whose rollup count is the station's count of readings (its first: every
 * reading carries all of its station's fields, or it is dead-lettered). The SQL takes the two
 * lists side by side.
 */
export const readingCountFields = {
  stations: stationNames as readonly string[],
  fields: stationNames.map((s) => Object.keys(stations[s].fields)[0]!),
}

export const allTopics = (prefix: string): string[] => stationNames.map((s) => topicFor(s, prefix))

/**
 * The inspection outcome: where it is (station, field), its results in catalog order, and the
 * one that counts for first-pass yield. The quality summary and the BI view read it from here.
 */
export const inspection = {
  station: 'quality',
  field: 'inspection_result',
  results: stations.quality.fields.inspection_result.values,
  pass: stations.quality.fields.inspection_result.values[0],
  defects: 'defect_count',
} as const
