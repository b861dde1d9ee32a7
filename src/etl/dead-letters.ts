import type { Config } from '../config/index.ts'
import { type Pool, withClient } from '../db/index.ts'
import { ensurePartitions } from './load.ts'
import { mergeRollups, RollupBuilder } from './rollups.ts'
import { type ReasonCode, transformRecord, validationPolicy } from './transform.ts'

export interface DeadLetterRow {
  id: number
  topic: string
  partition: number
  offset: number
  reason_code: ReasonCode
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

const WHERE = `
  ($1::bigint[] IS NULL OR id = ANY($1))
  AND ($2::text IS NULL OR reason_code = $2)
  AND ($3::text IS NULL OR topic = $3)
  AND ($4::boolean OR resolved_at IS NULL)`

const params = (f: DeadLetterFilter) => [
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
     FROM dead_letters WHERE ${WHERE} ORDER BY id DESC LIMIT $5`,
    [...params(filter), filter.limit ?? 50],
  )
  return rows.map(({ message_key, ...row }) => ({ ...row, key: keyText(message_key) }))
}

export interface RetrySummary {
  selected: number
  loaded: number
  stillRejected: { id: number; reasonCode: ReasonCode; reason: string }[]
}

/**
 * Re-drives dead letters after a fix (a catalog change, a wider time window): each is validated
 * again from its stored raw bytes with today's rules. One that passes becomes a row of
 * `sensor_data` with its original Kafka coordinates, and its dead letter is marked resolved, in
 * one transaction; the unique key on the coordinates makes a second retry a no-op.
 */
export async function retryDeadLetters(
  config: Config,
  pool: Pool,
  filter: DeadLetterFilter,
): Promise<RetrySummary> {
  const summary: RetrySummary = { selected: 0, loaded: 0, stillRejected: [] }
  return withClient(pool, async (client) => {
    try {
      await client.query('BEGIN')
      const { rows } = await client.query<{
        id: number
        topic: string
        partition: number
        offset: string
        message_key: Buffer | null
        message_value: Buffer | null
      }>(
        `SELECT id, topic, partition, "offset"::text, message_key, message_value FROM dead_letters
       WHERE ${WHERE} ORDER BY id LIMIT $5 FOR UPDATE SKIP LOCKED`,
        [...params(filter), filter.limit ?? 10_000],
      )
      summary.selected = rows.length
      const now = Date.now()
      const policy = validationPolicy(config, now)
      // The rollups of the rows this re-drive inserts, merged once before the commit.
      const rollups = new RollupBuilder()
      for (const dl of rows) {
        const result = transformRecord(
          {
            topic: dl.topic,
            partition: dl.partition,
            offset: BigInt(dl.offset),
            key: dl.message_key,
            value: dl.message_value,
          },
          policy,
          new Date(now).toISOString(),
        )
        if (!result.ok) {
          summary.stillRejected.push({ id: dl.id, ...result.rejection })
          await client.query(
            `UPDATE dead_letters SET attempts = attempts + 1, last_attempt_at = now(), reason_code = $2, reason = $3 WHERE id = $1`,
            [dl.id, result.rejection.reasonCode, result.rejection.reason],
          )
          continue
        }
        const r = result.row
        await ensurePartitions(client, [r])
        const inserted = await client.query<{ id: number }>(
          `INSERT INTO sensor_data (station, data, reading_time, source_topic, source_partition, source_offset)
         VALUES ($1, $2, to_timestamp($3), $4, $5, $6)
         ON CONFLICT (source_topic, source_partition, source_offset, reading_time) DO NOTHING
         RETURNING id`,
          [r.station, r.data, r.timestamp, r.topic, r.partition, dl.offset],
        )
        // Already there (an earlier re-drive): its rollups are counted; point at the existing row.
        let rowId = inserted.rows[0]?.id
        if (rowId === undefined) {
          const existing = await client.query<{ id: number }>(
            `SELECT id FROM sensor_data WHERE source_topic = $1 AND source_partition = $2 AND source_offset = $3
               AND reading_time = to_timestamp($4)`,
            [r.topic, r.partition, dl.offset, r.timestamp],
          )
          rowId = existing.rows[0]!.id
        } else rollups.add(r.station, r.timestamp, result.reading)
        await client.query(
          `UPDATE dead_letters SET attempts = attempts + 1, last_attempt_at = now(), resolved_at = now(), resolved_row_id = $2
         WHERE id = $1`,
          [dl.id, rowId],
        )
        summary.loaded++
      }
      await mergeRollups(client, rollups.build())
      await client.query('COMMIT')
      return summary
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined)
      throw error
    }
  })
}
