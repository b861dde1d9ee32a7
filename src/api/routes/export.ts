import { Readable } from 'node:stream'
import type pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import { Type } from 'typebox'
import type { Pool } from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { answers } from '../problems.ts'
import { readingJson } from '../reading.ts'
import { ExportQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

const FETCH_ROWS = 2000

/**
 * `GET /export`: every reading of a window, streamed from PostgreSQL with backpressure, so memory
 * stays flat whatever the size. CSV comes from COPY (typed columns of the station's BI view when a
 * station is given); NDJSON from a cursor, PostgreSQL building each line's JSON.
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
      const client = await pool.connect()
      // The statement timeout is for interactive queries; an export runs as long as it streams.
      await client.query('SET statement_timeout = 0')
      const release = (error?: Error) => {
        client.query('RESET statement_timeout').then(
          () => client.release(error),
          () => client.release(true),
        )
      }
      const name = `evf-${station ?? 'all'}-${from.toISOString().slice(0, 19).replaceAll(':', '')}.${format}`
      reply.header('content-disposition', `attachment; filename="${name}"`)
      if (format === 'csv') {
        // COPY takes no parameters: the window is inlined as literals quoted by the driver, from
        // parsed dates (never from the request's text); the view name comes from the catalog enum.
        const source = station ? `bi.${station}_readings` : 'sensor_data'
        const cols = station ? '*' : 'id, station, reading_time, created_at, data'
        const sql = `COPY (SELECT ${cols} FROM ${source} WHERE reading_time >= ${client.escapeLiteral(from.toISOString())}
          AND reading_time < ${client.escapeLiteral(to.toISOString())} ORDER BY reading_time, id) TO STDOUT WITH (FORMAT csv, HEADER)`
        const stream = client.query(copyTo(sql))
        stream.on('end', () => release())
        stream.on('error', (e) => release(e))
        req.raw.on('close', () => {
          if (!stream.readableEnded) stream.destroy()
        })
        return reply.type('text/csv; charset=utf-8').send(stream)
      }
      return reply
        .type('application/x-ndjson')
        .send(Readable.from(ndjson(client, release, station, from, to)))
    },
  )
}

async function* ndjson(
  client: pg.PoolClient,
  release: (e?: Error) => void,
  station: string | undefined,
  from: Date,
  to: Date,
): AsyncGenerator<string> {
  let failed: Error | undefined
  try {
    await client.query('BEGIN READ ONLY')
    await client.query(
      `DECLARE export NO SCROLL CURSOR FOR
       SELECT ${readingJson('s')}::text AS line
       FROM sensor_data s WHERE ($1::text IS NULL OR station = $1) AND reading_time >= $2 AND reading_time < $3
       ORDER BY reading_time, id`,
      [station ?? null, from, to],
    )
    for (;;) {
      const { rows } = await client.query<{ line: string }>(`FETCH ${FETCH_ROWS} FROM export`)
      if (rows.length === 0) break
      let chunk = ''
      for (const r of rows) chunk += `${r.line}\n`
      yield chunk
    }
    await client.query('COMMIT')
  } catch (error) {
    failed = error as Error
    throw error
  } finally {
    // Also reached when the client disconnects mid-export (the generator is returned early).
    if (!failed) await client.query('ROLLBACK').catch(() => undefined)
    release(failed)
  }
}
