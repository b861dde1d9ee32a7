import type { FastifyInstance } from 'fastify'
import { stationNames } from '../../catalog/index.ts'
import type { Pool } from '../../db/index.ts'
import { parseTime, timeParam } from '../params.ts'

const readingSchema = {
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

interface Query {
  limit: number
  station?: string
  since?: string
  until?: string
  before_id?: number
}

/**
 * PostgreSQL builds the whole JSON array, so Node passes bytes through instead of parsing rows
 * into objects and serialising them again. Filters are parameters, never SQL text.
 */
const LATEST = `
SELECT coalesce(json_agg(t), '[]')::text AS body, count(*)::int AS n, min(t.id) AS last_id FROM (
  SELECT id, station, data, created_at FROM sensor_data
  WHERE ($2::text IS NULL OR station = $2)
    AND ($3::timestamptz IS NULL OR reading_time >= $3)
    AND ($4::timestamptz IS NULL OR reading_time < $4)
    AND ($5::bigint IS NULL OR id < $5)
  ORDER BY id DESC LIMIT $1
) t`

export function sensorDataRoutes(app: FastifyInstance, pool: Pool): void {
  app.get<{ Querystring: Query }>(
    '/sensor-data',
    {
      schema: {
        summary: 'Readings, newest first (the reference system’s endpoint), with filters and cursor pages',
        description:
          'A full page carries a `Link: <…?before_id=N>; rel="next"` header to the next (older) page.',
        tags: ['readings'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            station: { type: 'string', enum: stationNames },
            since: { ...timeParam, description: `reading time ≥ this; ${timeParam.description}` },
            until: { ...timeParam, description: `reading time < this; ${timeParam.description}` },
            before_id: {
              type: 'integer',
              minimum: 1,
              maximum: Number.MAX_SAFE_INTEGER,
              description: 'cursor: ids below this',
            },
          },
        },
        response: { 200: { type: 'array', items: readingSchema } },
      },
    },
    async (req, reply) => {
      const q = req.query
      const since = parseTime('since', q.since)
      const until = parseTime('until', q.until)
      const { rows } = await pool.query<{ body: string; n: number; last_id: number | null }>(LATEST, [
        q.limit,
        q.station ?? null,
        since ?? null,
        until ?? null,
        q.before_id ?? null,
      ])
      const { body, n, last_id } = rows[0]!
      if (n === q.limit && last_id !== null) {
        const next = new URLSearchParams()
        for (const [k, v] of Object.entries(q))
          if (v !== undefined && k !== 'before_id') next.set(k, String(v))
        next.set('before_id', String(last_id))
        reply.header('link', `</sensor-data?${next}>; rel="next"`)
      }
      // The body is already JSON: skip the response serializer.
      return reply
        .type('application/json; charset=utf-8')
        .serializer((p: unknown) => p as string)
        .send(body)
    },
  )
}
