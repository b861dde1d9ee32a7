import type pg from 'pg'
import type { SourceRecord } from '../../catalog/index.ts'
import type { Pool } from '../pool.ts'
import { ensurePartitions, type SensorRow } from './load.ts'

/**
 * Dead letters as people read them (`evf etl dead-letters list`, the API's `/dead-letters`): the
 * message's coordinates, why it was rejected, and a printable preview of its bytes.
 */
export interface DeadLetterRow {
  id: number
  topic: string
  partition: number
  offset: number
  reason_code: string
  reason: string
  attempts: number
  created_at: string
  resolved_at: string | null
  key: string | null
  value_preview: string
  value_bytes: number
}

export interface DeadLetterFilter {
  ids?: number[]
  reason?: string
  topic?: string
  includeResolved?: boolean
  limit?: number
}

const deadLetterWhere = `
  ($1::bigint[] IS NULL OR id = ANY($1))
  AND ($2::text IS NULL OR reason_code = $2)
  AND ($3::text IS NULL OR topic = $3)
  AND ($4::boolean OR resolved_at IS NULL)`

const deadLetterParams = (f: DeadLetterFilter) => [
  f.ids?.length ? f.ids : null,
  f.reason ?? null,
  f.topic ?? null,
  f.includeResolved ?? false,
]

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** A key as text when it is UTF-8, else as hex: a dead letter's key may be any bytes. */
function keyText(key: Buffer | null): string | null {
  if (!key) return null
  try {
    return utf8.decode(key)
  } catch {
    return `0x${key.toString('hex')}`
  }
}

/** Dead letters, newest first, with a printable preview of the value (raw bytes stay in the table). */
export async function listDeadLetters(pool: Pool, filter: DeadLetterFilter = {}): Promise<DeadLetterRow[]> {
  const { rows } = await pool.query<Omit<DeadLetterRow, 'key'> & { message_key: Buffer | null }>(
    `SELECT id, topic, partition, "offset", reason_code, reason, attempts, created_at, resolved_at, message_key,
            left(encode(message_value, 'escape'), 120) AS value_preview,
            coalesce(length(message_value), 0) AS value_bytes
     FROM dead_letters WHERE ${deadLetterWhere} ORDER BY id DESC LIMIT $5`,
    [...deadLetterParams(filter), filter.limit ?? 50],
  )
  return rows.map(({ message_key, ...row }) => ({ ...row, key: keyText(message_key) }))
}

/** A dead letter as the re-drive reads it: the record it keeps, and its id. */
export interface StoredDeadLetter extends SourceRecord {
  id: number
}

/**
 * The dead letters `filter` selects, oldest first, locked for the transaction `client` is in;
 * those another re-drive holds are skipped.
 */
export async function lockDeadLetters(
  client: pg.ClientBase,
  filter: DeadLetterFilter,
): Promise<StoredDeadLetter[]> {
  const { rows } = await client.query<{
    id: number
    topic: string
    partition: number
    offset: string
    message_key: Buffer | null
    message_value: Buffer | null
  }>(
    `SELECT id, topic, partition, "offset"::text, message_key, message_value FROM dead_letters
     WHERE ${deadLetterWhere} ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED`,
    [...deadLetterParams(filter), filter.limit ?? 10_000],
  )
  return rows.map((r) => ({
    id: r.id,
    topic: r.topic,
    partition: r.partition,
    offset: BigInt(r.offset),
    key: r.message_key,
    value: r.message_value,
  }))
}

/** Counts a re-drive attempt of dead letters that are still rejected, with today's reason. */
export async function recordStillRejected(
  client: pg.ClientBase,
  rejected: readonly { id: number; reasonCode: string; reason: string }[],
): Promise<void> {
  if (rejected.length === 0) return
  await client.query(
    `UPDATE dead_letters d SET attempts = attempts + 1, last_attempt_at = now(), reason_code = u.code, reason = u.reason
     FROM unnest($1::bigint[], $2::text[], $3::text[]) AS u(id, code, reason) WHERE d.id = u.id`,
    [rejected.map((r) => r.id), rejected.map((r) => r.reasonCode), rejected.map((r) => r.reason)],
  )
}

/**
 * Inserts the rows of re-driven dead letters, with their original Kafka coordinates; a row
 * already there (an earlier re-drive) is kept. Returns the rows inserted now, whose rollups are
 * then due.
 */
export async function insertRedriven<R extends SensorRow>(
  client: pg.ClientBase,
  rows: readonly R[],
): Promise<R[]> {
  if (rows.length === 0) return []
  await ensurePartitions(client, rows)
  const { rows: inserted } = await client.query<{ topic: string; partition: number; offset: string }>(
    `INSERT INTO sensor_data (station, data, reading_time, source_topic, source_partition, source_offset)
     SELECT station, data::jsonb, to_timestamp(t), topic, p, o
     FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::int[], $6::bigint[]) AS u(station, data, t, topic, p, o)
     ON CONFLICT (source_topic, source_partition, source_offset, reading_time) DO NOTHING
     RETURNING source_topic AS topic, source_partition AS partition, source_offset::text AS offset`,
    [
      rows.map((r) => r.station),
      rows.map((r) => r.data),
      rows.map((r) => r.timestamp),
      rows.map((r) => r.topic),
      rows.map((r) => r.partition),
      rows.map((r) => r.offset.toString()),
    ],
  )
  const coordinates = (r: { topic: string; partition: number; offset: string | bigint }) =>
    `${r.topic}:${r.partition}:${r.offset}`
  const fresh = new Set(inserted.map(coordinates))
  return rows.filter((r) => fresh.has(coordinates(r)))
}

/** Marks dead letters resolved by the rows that now hold their coordinates. */
export async function markResolved(client: pg.ClientBase, ids: readonly number[]): Promise<void> {
  if (ids.length === 0) return
  await client.query(
    `UPDATE dead_letters d SET attempts = attempts + 1, last_attempt_at = now(), resolved_at = now(), resolved_row_id = s.id
     FROM sensor_data s
     WHERE d.id = ANY($1::bigint[]) AND s.source_topic = d.topic AND s.source_partition = d.partition
       AND s.source_offset = d."offset"`,
    [ids],
  )
}
