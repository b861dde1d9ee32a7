/**
 * Readings as the API answers them, in the reference system's shape — `{id, station, data,
 * created_at}` (`Reading` in api/schemas.ts) — built as JSON by PostgreSQL, so Node passes bytes
 * through instead of parsing rows into objects and serialising them again. Filters are
 * parameters, never SQL text.
 */
import { Readable } from 'node:stream'
import type pg from 'pg'
import { to as copyTo } from 'pg-copy-streams'
import type { Pool } from '../pool.ts'
import type { LoadedRange } from './loaded.ts'

const READING_COLUMNS = ['id', 'station', 'data', 'created_at'] as const

/** The reading as a JSON object, from the `sensor_data` row aliased `table`. */
const readingJson = (table: string): string =>
  `json_build_object(${READING_COLUMNS.map((c) => `'${c}', ${table}.${c}`).join(', ')})`

export interface ReadingFilter {
  station?: string | undefined
  since?: Date | undefined
  until?: Date | undefined
  /** readings older than this id: the cursor of the next page */
  beforeId?: number | undefined
  limit: number
}

/** A page of readings: the JSON array, how many it holds, and the oldest id in it. */
export interface ReadingPage {
  json: string
  count: number
  oldestId: number | null
}

const FILTERS = [
  ['station', 'station = $%'],
  ['since', 'reading_time >= $%'],
  ['until', 'reading_time < $%'],
  ['beforeId', 'id < $%'],
] as const

/**
 * One statement per combination of filters, each prepared under its own name: the plan of a
 * partitioned table costs as much as running the query, and a statement with only the filters
 * it uses gets a generic plan that is as good as a custom one.
 */
function pageStatement(f: ReadingFilter): pg.QueryConfig {
  const values: unknown[] = [f.limit]
  const where: string[] = []
  let mask = 0
  FILTERS.forEach(([name, cond], bit) => {
    const v = f[name]
    if (v === undefined) return
    values.push(v)
    where.push(cond.replace('%', String(values.length)))
    mask |= 1 << bit
  })
  const text = `
SELECT coalesce(json_agg(t), '[]')::text AS json, count(*)::int AS count, min(t.id) AS "oldestId" FROM (
  SELECT ${READING_COLUMNS.join(', ')} FROM sensor_data
  ${where.length > 0 ? `WHERE ${where.join(' AND ')}` : ''}
  ORDER BY id DESC LIMIT $1
) t`
  return { name: `sensor-data-${mask}`, text, values }
}

/** The newest readings that pass the filter, newest first (`/sensor-data`). */
export async function readingPage(pool: Pool, filter: ReadingFilter): Promise<ReadingPage> {
  const { rows } = await pool.query<ReadingPage>(pageStatement(filter))
  return rows[0]!
}

/** A station's newest reading as JSON, or undefined before its first. */
export async function latestReading(pool: Pool, station: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ json: string }>(
    `SELECT ${readingJson('s')}::text AS json FROM sensor_data s WHERE station = $1 ORDER BY id DESC LIMIT 1`,
    [station],
  )
  return rows[0]?.json
}

/** A reading as the stream sends it: its id, its station and its JSON. */
export interface LiveReading {
  id: number
  station: string
  json: string
}

/** The readings of source ranges one load transaction committed (its `evf_loaded` message), at most 20,000. */
export async function readingsOfRanges(pool: Pool, ranges: readonly LoadedRange[]): Promise<LiveReading[]> {
  const { rows } = await pool.query<LiveReading>(
    `SELECT s.id, s.station, ${readingJson('s')}::text AS json
     FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(topic, partition, lo, hi)
     JOIN sensor_data s ON s.source_topic = r.topic AND s.source_partition = r.partition
       AND s.source_offset >= r.lo AND s.source_offset < r.hi
     ORDER BY s.id LIMIT 20000`,
    [
      ranges.map((r) => r.topic),
      ranges.map((r) => r.partition),
      ranges.map((r) => String(r.from)),
      ranges.map((r) => String(r.to)),
    ],
  )
  return rows
}

/** Up to 1,000 readings after row `afterId`, oldest first, of one station or all. */
export async function readingsAfter(pool: Pool, afterId: number, station?: string): Promise<LiveReading[]> {
  const { rows } = await pool.query<LiveReading>(
    `SELECT s.id, s.station, ${readingJson('s')}::text AS json
     FROM sensor_data s WHERE id > $1 AND ($2::text IS NULL OR station = $2) ORDER BY id LIMIT 1000`,
    [afterId, station ?? null],
  )
  return rows
}

export interface ExportRequest {
  format: 'csv' | 'ndjson'
  /** with a station, CSV has its BI view's typed columns; without, the `data` JSON */
  station?: string | undefined
  from: Date
  to: Date
}

const FETCH_ROWS = 2000

/**
 * Every reading of a window, oldest first, as a stream that PostgreSQL feeds with backpressure,
 * so memory stays flat whatever the size: CSV from COPY, NDJSON from a cursor. The stream holds a
 * connection of its own, without the interactive statement timeout, until it ends or is destroyed.
 */
export async function exportReadings(pool: Pool, req: ExportRequest): Promise<Readable> {
  const client = await pool.connect()
  // The statement timeout is for interactive queries; an export runs as long as it streams.
  await client.query('SET statement_timeout = 0')
  let released = false
  const release = (error?: Error) => {
    if (released) return
    released = true
    client.query('RESET statement_timeout').then(
      () => client.release(error),
      () => client.release(true),
    )
  }
  if (req.format === 'ndjson') return Readable.from(ndjson(client, release, req))
  const stream = client.query(copyTo(csvCopy(client, req)))
  stream.on('end', () => release())
  stream.on('error', (e) => release(e))
  // Destroyed mid-COPY (the HTTP client went away): the connection is in no state to be reused.
  stream.on('close', () => release(new Error('export stopped before its end')))
  return stream
}

/**
 * COPY takes no parameters: the window is inlined as literals quoted by the driver, from parsed
 * dates; the view name comes from a station name the API validated against the catalog.
 */
function csvCopy(client: pg.ClientBase, { station, from, to }: ExportRequest): string {
  const source = station ? `bi.${station}_readings` : 'sensor_data'
  const cols = station ? '*' : 'id, station, reading_time, created_at, data'
  return `COPY (SELECT ${cols} FROM ${source} WHERE reading_time >= ${client.escapeLiteral(from.toISOString())}
    AND reading_time < ${client.escapeLiteral(to.toISOString())} ORDER BY reading_time, id) TO STDOUT WITH (FORMAT csv, HEADER)`
}

async function* ndjson(
  client: pg.PoolClient,
  release: (e?: Error) => void,
  { station, from, to }: ExportRequest,
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
