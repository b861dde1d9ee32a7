import { Type } from 'typebox'
import { type Pool, readingPage } from '../../db/index.ts'
import { sendJsonText } from '../json-text.ts'
import { parseTime } from '../params.ts'
import { answers } from '../problems.ts'
import { Reading, SensorDataQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

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
      const { json, count, oldestId } = await readingPage(pool, {
        station: q.station,
        since: parseTime(q.since),
        until: parseTime(q.until),
        beforeId: q.before_id,
        limit: q.limit,
      })
      if (count === q.limit && oldestId !== null) {
        const next = new URLSearchParams()
        for (const [k, v] of Object.entries(q))
          if (v !== undefined && k !== 'before_id') next.set(k, String(v))
        next.set('before_id', String(oldestId))
        reply.header('link', `</sensor-data?${next}>; rel="next"`)
      }
      return sendJsonText(reply, json)
    },
  )
}
