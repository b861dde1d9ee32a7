import type { Pool } from './pool.ts'

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

export const deadLetterWhere = `
  ($1::bigint[] IS NULL OR id = ANY($1))
  AND ($2::text IS NULL OR reason_code = $2)
  AND ($3::text IS NULL OR topic = $3)
  AND ($4::boolean OR resolved_at IS NULL)`

export const deadLetterParams = (f: DeadLetterFilter) => [
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
