import type pg from 'pg'
import type { Pool } from '../pool.ts'

/** A partition held back at a record batch the ETL could not decode (`etl_blocked`). */
export interface BlockedPartition {
  topic: string
  partition: number
  first_offset: string
  last_offset: string
  reason: string
  detected_at: Date
}

/** Records (or refreshes) that a partition is held back at this batch. */
export async function recordBlocked(
  pool: Pool,
  b: {
    topic: string
    partition: number
    firstOffset: bigint
    lastOffset: bigint
    reason: string
    raw: Buffer
  },
): Promise<void> {
  await pool.query(
    `INSERT INTO etl_blocked (topic, partition, first_offset, last_offset, reason, raw)
     VALUES ($1, $2, $3, $4, $5, $6)
     ON CONFLICT (topic, partition) DO UPDATE
       SET first_offset = excluded.first_offset, last_offset = excluded.last_offset,
           reason = excluded.reason, raw = excluded.raw,
           detected_at = CASE WHEN etl_blocked.first_offset = excluded.first_offset
                              THEN etl_blocked.detected_at ELSE now() END`,
    [b.topic, b.partition, String(b.firstOffset), String(b.lastOffset), b.reason, b.raw],
  )
}

/** The partitions held back now: those whose position has not passed the batch. */
export async function blockedPartitions(pool: Pool | pg.ClientBase): Promise<BlockedPartition[]> {
  const { rows } = await pool.query<BlockedPartition>(
    `SELECT b.topic, b.partition, b.first_offset::text, b.last_offset::text, b.reason, b.detected_at
     FROM etl_blocked b
     LEFT JOIN etl_offsets o ON o.topic = b.topic AND o.partition = b.partition
     WHERE coalesce(o.next_offset, 0) <= b.last_offset
     ORDER BY b.topic, b.partition`,
  )
  return rows
}

export interface Skipped {
  topic: string
  partition: number
  firstOffset: string
  lastOffset: string
  bytes: number
  deadLetterId: number
}

/**
 * Moves a held-back partition past its undecodable batch, deliberately: the batch's raw bytes
 * become a dead letter (reason `UNDECODABLE_BATCH`, at its first offset) and the position moves
 * to the offset after it, in one transaction and only from the batch's first offset (the fence:
 * the ETL must have loaded everything before it). Returns undefined when nothing is held back
 * there; throws when the position is elsewhere.
 */
export async function skipBlocked(
  client: pg.ClientBase,
  topic: string,
  partition: number,
): Promise<Skipped | undefined> {
  const { rows } = await client.query<{
    first_offset: string
    last_offset: string
    reason: string
    raw: Buffer
  }>(
    'SELECT first_offset::text, last_offset::text, reason, raw FROM etl_blocked WHERE topic = $1 AND partition = $2 FOR UPDATE',
    [topic, partition],
  )
  const b = rows[0]
  if (!b) return undefined
  const moved = await client.query(
    `UPDATE etl_offsets SET next_offset = $4 + 1, updated_at = now()
     WHERE topic = $1 AND partition = $2 AND next_offset = $3`,
    [topic, partition, b.first_offset, b.last_offset],
  )
  if (moved.rowCount !== 1) {
    const at = await client.query<{ next_offset: string }>(
      'SELECT next_offset::text FROM etl_offsets WHERE topic = $1 AND partition = $2',
      [topic, partition],
    )
    throw new Error(
      `${topic}[${partition}] is at offset ${at.rows[0]?.next_offset ?? 'none'}, not at the undecodable batch's first offset ${b.first_offset}: nothing skipped`,
    )
  }
  const letter = await client.query<{ id: string }>(
    `INSERT INTO dead_letters (topic, partition, "offset", message_key, message_value, reason_code, reason)
     VALUES ($1, $2, $3, NULL, $4, 'UNDECODABLE_BATCH', $5) RETURNING id`,
    [
      topic,
      partition,
      b.first_offset,
      b.raw,
      `record batch at offsets ${b.first_offset}–${b.last_offset} could not be decoded (${b.reason}); skipped by evf etl skip, its raw bytes kept here`,
    ],
  )
  await client.query('DELETE FROM etl_blocked WHERE topic = $1 AND partition = $2', [topic, partition])
  return {
    topic,
    partition,
    firstOffset: b.first_offset,
    lastOffset: b.last_offset,
    bytes: b.raw.length,
    deadLetterId: Number(letter.rows[0]!.id),
  }
}
