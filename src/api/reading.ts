import type { FastifyReply } from 'fastify'

/**
 * A reading as the API answers it, in the reference system's shape — `{id, station, data,
 * created_at}` — built by PostgreSQL, so Node passes bytes through. Its schema is `Reading` in
 * schemas.ts; every route that answers readings uses these.
 */
export const READING_COLUMNS = ['id', 'station', 'data', 'created_at'] as const

/** The reading as a JSON object built in SQL, from the `sensor_data` row aliased `table`. */
export const readingJson = (table: string): string =>
  `json_build_object(${READING_COLUMNS.map((c) => `'${c}', ${table}.${c}`).join(', ')})`

/**
 * Sends JSON text that PostgreSQL built in the shape of the route's 200 schema, past the
 * serializer (which would otherwise encode the string as a JSON string).
 */
export function sendJsonText(reply: FastifyReply, json: string): FastifyReply {
  // The reply's type is the route's answer schema; this text is that answer, already serialised.
  return reply
    .type('application/json; charset=utf-8')
    .serializer((p: unknown) => p as string)
    .send(json as never)
}
