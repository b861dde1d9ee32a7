import { Type } from 'typebox'
import type { Pool } from '../../db/index.ts'
import { parseTime } from '../params.ts'
import { answers } from '../problems.ts'
import { READING_COLUMNS, sendJsonText } from '../reading.ts'
import { Reading, SensorDataQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

/**
 * PostgreSQL builds the whole JSON array, so Node passes bytes through instead of parsing rows
 * into objects and serialising them again. Filters are parameters, never SQL text. One statement
 * per combination of filters, each prepared under its own name: the plan of a partitioned table
 * costs as much as running the query, and a statement with only the filters it uses gets a
 * generic plan that is as good as a custom one.
 */
const FILTERS = [
  ['station', 'station = $%'],
  ['since', 'reading_time >= $%'],
  ['until', 'reading_time < $%'],
  ['before_id', 'id < $%'],
] as const

function latestStatement(q: SensorDataQuery, since: Date | undefined, until: Date | undefined) {
  const given = { station: q.station, since, until, before_id: q.before_id }
  const values: unknown[] = [q.limit]
  const where: string[] = []
  let mask = 0
  FILTERS.forEach(([name, cond], bit) => {
    const v = given[name]
    if (v === undefined) return
    values.push(v)
    where.push(cond.replace('%', String(values.length)))
    mask |= 1 << bit
  })
  const text = `
SELECT coalesce(json_agg(t), '[]')::text AS body, count(*)::int AS n, min(t.id) AS last_id FROM (
  SELECT ${READING_COLUMNS.join(', ')} FROM sensor_data
  ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
  ORDER BY id DESC LIMIT $1
) t`
  return { name: `sensor-data-${mask}`, text, values }
}

export function sensorDataRoutes(app: Api, pool: Pool): void {
  app.get(
    '/sensor-data',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: 'Readings, newest first (the reference system’s endpoint), with filters and cursor pages',
        description:
          'A full page carries a `Link: <…?before_id=N>; rel="next"` header to the next (older) page.',
        tags: ['readings'],
        querystring: SensorDataQuery,
        response: answers({ 200: Type.Array(Reading) }),
      },
    },
    async (req, reply) => {
      const q = req.query
      const since = parseTime(q.since)
      const until = parseTime(q.until)
      const { rows } = await pool.query<{ body: string; n: number; last_id: number | null }>(
        latestStatement(q, since, until),
      )
      const { body, n, last_id } = rows[0]!
      if (n === q.limit && last_id !== null) {
        const next = new URLSearchParams()
        for (const [k, v] of Object.entries(q))
          if (v !== undefined && k !== 'before_id') next.set(k, String(v))
        next.set('before_id', String(last_id))
        reply.header('link', `</sensor-data?${next}>; rel="next"`)
      }
      return sendJsonText(reply, body)
    },
  )
}
