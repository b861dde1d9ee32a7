import { Type } from 'typebox'
import { exportReadings, type Pool } from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { answers } from '../problems.ts'
import { ExportQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

/**
 * `GET /export`: every reading of a window, streamed from PostgreSQL with backpressure, so memory
 * stays flat whatever the size (db/queries/readings.ts, `exportReadings`).
 */
export function exportRoutes(app: Api, pool: Pool): void {
  app.get(
    '/export',
    {
      config: { scope: 'export' },
      schema: {
        summary: 'Readings of a window as CSV or NDJSON, streamed (oldest first)',
        description:
          'With `station`, CSV has one typed column per measurement (the station’s BI view); without, the `data` JSON. Default window: the last 24 hours.',
        tags: ['readings'],
        querystring: ExportQuery,
        response: answers({
          200: {
            description: 'a file (Content-Disposition: attachment)',
            content: {
              'text/csv': { schema: Type.String() },
              'application/x-ndjson': { schema: Type.String({ description: 'one reading per line' }) },
            },
          },
        }),
      },
    },
    async (req, reply) => {
      const { format, station } = req.query
      const { from, to } = windowOf(req.query, 86_400_000)
      const stream = await exportReadings(pool, { format, station, from, to })
      req.raw.on('close', () => {
        if (!stream.readableEnded) stream.destroy()
      })
      const name = `evf-${station ?? 'all'}-${from.toISOString().slice(0, 19).replaceAll(':', '')}.${format}`
      return reply
        .header('content-disposition', `attachment; filename="${name}"`)
        .type(format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
        .send(stream)
    },
  )
}
