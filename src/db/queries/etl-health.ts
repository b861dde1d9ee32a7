import type { Pool } from '../pool.ts'

/** One partition's position against its log end, as the ETL last recorded them. */
export interface PartitionHealth {
  topic: string
  partition: number
  next_offset: number
  end_offset: number | null
  /** messages in Kafka not yet loaded (end − next), as of `end_offset_at` */
  lag: number | null
  end_offset_at: string | null
  /** seconds the partition has been behind with no progress (null: caught up, moving, or not watched) */
  behind_sec: number | null
  /** why the partition cannot go on, when the ETL holds it back (a batch it cannot decode) */
  blocked_reason: string | null
  stalled: boolean
}

export interface EtlHealth {
  last_commit_at: Date | null
  /** total lag, null before any end offset was recorded */
  lag: number | null
  lag_as_of: Date | null
  stall_sec: number
  stalled: boolean
  partitions: PartitionHealth[]
}

const HEALTH = `
SELECT o.topic, o.partition, o.next_offset, l.end_offset, greatest(l.end_offset - o.next_offset, 0) AS lag,
       l.end_offset_at, o.updated_at,
       CASE WHEN l.watched AND l.end_offset > o.next_offset AND o.next_offset = l.seen_next_offset
            THEN round(extract(epoch FROM now() - l.progress_at))::int END AS behind_sec,
       'the record batch at offsets ' || b.first_offset || '–' || b.last_offset || ' cannot be decoded ('
         || b.reason || '); evf etl skip moves past it' AS blocked_reason
FROM etl_offsets o
LEFT JOIN etl_lag l ON l.topic = o.topic AND l.partition = o.partition
LEFT JOIN etl_blocked b ON b.topic = o.topic AND b.partition = o.partition AND o.next_offset <= b.last_offset
ORDER BY o.topic, o.partition`

/**
 * The ETL's health as PostgreSQL holds it: its last commit, its lag, and whether it is stalled.
 * A partition is **stalled** when messages wait for it and its position has not moved for longer
 * than `stallSec`, as the continuous ETL's watchdog observed (`etl_lag`, `recordLogEnds`), or
 * when the ETL holds it back at a record batch it cannot decode (`etl_blocked`, `blocked_reason`). The watchdog, `/ready`, `/metrics`, `/pipeline/status` and so the dashboard
 * all use this one definition.
 */
export async function etlHealth(pool: Pool, stallSec: number): Promise<EtlHealth> {
  const { rows } = await pool.query<
    Omit<PartitionHealth, 'stalled' | 'next_offset' | 'end_offset' | 'lag' | 'end_offset_at'> & {
      next_offset: string
      end_offset: string | null
      lag: string | null
      end_offset_at: Date | null
      updated_at: Date
    }
  >(HEALTH)
  let last: Date | null = null
  let asOf: Date | null = null
  let lag: number | null = null
  const partitions = rows.map((r): PartitionHealth => {
    if (!last || r.updated_at > last) last = r.updated_at
    if (r.end_offset_at && (!asOf || r.end_offset_at < asOf)) asOf = r.end_offset_at
    const behind = r.lag === null ? null : Number(r.lag)
    if (behind !== null) lag = (lag ?? 0) + behind
    return {
      topic: r.topic,
      partition: r.partition,
      next_offset: Number(r.next_offset),
      end_offset: r.end_offset === null ? null : Number(r.end_offset),
      lag: behind,
      end_offset_at: r.end_offset_at?.toISOString() ?? null,
      behind_sec: r.behind_sec,
      blocked_reason: r.blocked_reason,
      stalled: (r.behind_sec !== null && r.behind_sec > stallSec) || r.blocked_reason !== null,
    }
  })
  return {
    last_commit_at: last,
    lag,
    lag_as_of: asOf,
    stall_sec: stallSec,
    stalled: partitions.some((p) => p.stalled),
    partitions,
  }
}
