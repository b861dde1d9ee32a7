import type { FastifyInstance } from 'fastify'
import { stationNames } from '../../catalog/index.ts'
import type { Pool } from '../../db/index.ts'

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
}

/**
 * PostgreSQL builds the whole JSON array, so Node passes bytes through instead of parsing rows
 * into objects and serialising them again.
 */
const LATEST = `
SELECT coalesce(json_agg(t), '[]')::text AS body FROM (
  SELECT id, station, data, created_at FROM sensor_data
  WHERE ($2::text IS NULL OR station = $2)
  ORDER BY id DESC LIMIT $1
) t`

export function sensorDataRoutes(app: FastifyInstance, pool: Pool): void {
  app.get<{ Querystring: Query }>(
    '/sensor-data',
    {
      schema: {
        summary: 'Latest readings, newest first (the reference system’s endpoint)',
        tags: ['readings'],
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 },
            station: { type: 'string', enum: stationNames },
          },
        },
        response: { 200: { type: 'array', items: readingSchema } },
      },
    },
    async (req, reply) => {
      const { rows } = await pool.query<{ body: string }>(LATEST, [
        req.query.limit,
        req.query.station ?? null,
      ])
      // The body is already JSON: skip the response serializer.
      return reply
        .type('application/json; charset=utf-8')
        .serializer((p: unknown) => p as string)
        .send(rows[0]!.body)
    },
  )
}
