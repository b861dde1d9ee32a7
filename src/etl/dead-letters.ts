import type pg from 'pg'
import type { Config } from '../config/index.ts'
import {
  type DeadLetterFilter,
  deadLetterParams,
  deadLetterWhere,
  type Pool,
  withClient,
} from '../db/index.ts'
import { ensurePartitions } from './load.ts'
import { mergeRollups, RollupBuilder } from './rollups.ts'
import { type LoadRow, type ReasonCode, transformRecord, validationPolicy } from './transform.ts'

export interface RetrySummary {
  selected: number
  loaded: number
  stillRejected: { id: number; reasonCode: ReasonCode; reason: string }[]
}

interface DeadLetterRecord {
  id: number
  topic: string
  partition: number
  offset: string
  message_key: Buffer | null
  message_value: Buffer | null
}

/** A dead letter that passes today's rules: the row it becomes. */
interface Passing {
  id: number
  row: LoadRow
  reading: Readonly<Record<string, unknown>>
}

/**
 * Re-drives dead letters after a fix (a catalog change, a wider time window): each is validated
 * again from its stored raw bytes with today's rules. One that passes becomes a row of
 * `sensor_data` with its original Kafka coordinates, and its dead letter is marked resolved, in
 * one transaction; the unique key on the coordinates makes a second retry a no-op. Set-based: a
 * few statements for the whole selection, not a round trip per dead letter.
 */
export async function retryDeadLetters(
  config: Config,
  pool: Pool,
  filter: DeadLetterFilter,
): Promise<RetrySummary> {
  return withClient(pool, async (client) => {
    try {
      await client.query('BEGIN')
      const { rows } = await client.query<DeadLetterRecord>(
        `SELECT id, topic, partition, "offset"::text, message_key, message_value FROM dead_letters
         WHERE ${deadLetterWhere} ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED`,
        [...deadLetterParams(filter), filter.limit ?? 10_000],
      )
      const now = Date.now()
      const policy = validationPolicy(config, now)
      const passing: Passing[] = []
      const stillRejected: RetrySummary['stillRejected'] = []
      for (const dl of rows) {
        const record = { ...dl, offset: BigInt(dl.offset), key: dl.message_key, value: dl.message_value }
        const result = transformRecord(record, policy, new Date(now).toISOString())
        if (result.ok) passing.push({ id: dl.id, row: result.row, reading: result.reading })
        else stillRejected.push({ id: dl.id, ...result.rejection })
      }
      await client.query(
        `UPDATE dead_letters d SET attempts = attempts + 1, last_attempt_at = now(), reason_code = u.code, reason = u.reason
         FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, code, reason) WHERE d.id = u.id`,
        [
          stillRejected.map((r) => r.id),
          stillRejected.map((r) => r.reasonCode),
          stillRejected.map((r) => r.reason),
        ],
      )
      await loadPassing(client, passing)
      await client.query('COMMIT')
      return { selected: rows.length, loaded: passing.length, stillRejected }
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  })
}

/**
 * Inserts the rows of the passing dead letters (those already there from an earlier re-drive
 * are kept, and their rollups not counted again), merges the new rows' rollups, and marks each
 * dead letter resolved with the id of its row.
 */
async function loadPassing(client: pg.PoolClient, passing: Passing[]): Promise<void> {
  if (passing.length === 0) return
  const rows = passing.map((p) => p.row)
  await ensurePartitions(client, rows)
  const { rows: inserted } = await client.query<{
    source_offset: string
    source_topic: string
    source_partition: number
  }>(
    `INSERT INTO sensor_data (station, data, reading_time, source_topic, source_partition, source_offset)
     SELECT station, data::jsonb, to_timestamp(t), topic, p, o
     FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::int[], $6::bigint[]) AS u(station, data, t, topic, p, o)
     ON CONFLICT (source_topic, source_partition, source_offset, reading_time) DO NOTHING
     RETURNING source_topic, source_partition, source_offset::text`,
    [
      rows.map((r) => r.station),
      rows.map((r) => r.data),
      rows.map((r) => r.timestamp),
      rows.map((r) => r.topic),
      rows.map((r) => r.partition),
      rows.map((r) => r.offset.toString()),
    ],
  )
  const coordinates = (topic: string, partition: number, offset: string | bigint) =>
    `${topic}:${partition}:${offset}`
  const fresh = new Set(inserted.map((r) => coordinates(r.source_topic, r.source_partition, r.source_offset)))
  const rollups = new RollupBuilder()
  for (const p of passing)
    if (fresh.has(coordinates(p.row.topic, p.row.partition, p.row.offset)))
      rollups.add(p.row.station, p.row.timestamp, p.reading)
  await mergeRollups(client, rollups.build())
  await client.query(
    `UPDATE dead_letters d SET attempts = attempts + 1, last_attempt_at = now(), resolved_at = now(), resolved_row_id = s.id
     FROM sensor_data s
     WHERE d.id = ANY($1::bigint[]) AND s.source_topic = d.topic AND s.source_partition = d.partition
       AND s.source_offset = d."offset"`,
    [passing.map((p) => p.id)],
  )
}
