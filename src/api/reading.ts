import { stationNames } from '../catalog/index.ts'

/**
 * A reading as the API answers it, in the reference system's shape — `{id, station, data,
 * created_at}` — in one place: the SQL that builds it in PostgreSQL (so Node passes bytes
 * through) and the JSON schema that documents it. Every route that answers readings uses both.
 */
export const READING_COLUMNS = ['id', 'station', 'data', 'created_at'] as const

/** The reading as a JSON object built in SQL, from the `sensor_data` row aliased `table`. */
export const readingJson = (table: string): string =>
  `json_build_object(${READING_COLUMNS.map((c) => `'${c}', ${table}.${c}`).join(', ')})`

export const readingSchema = {
  type: 'object',
  properties: {
    id: { type: 'integer' },
    station: { type: 'string', enum: stationNames },
    data: {
      type: 'object',
      additionalProperties: true,
      description: 'the transformed reading, with processed_at',
    },
    created_at: { type: 'string', format: 'date-time', description: 'when the ETL loaded it' },
  },
} as const
