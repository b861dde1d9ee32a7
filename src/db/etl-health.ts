import type { Pool } from './pool.ts'

/** One partition's position against its log end, as the ETL last recorded them. */
export interface PartitionHealth {
  topic: string
  partition: number
  next_offset: number
  end_offset: number | null
  /** messages in Kafka not yet loaded (end − next), as of `end_offset_at` */
  lag: number | null
  end_offset_at: string | null
  /** seconds the partition has been behind with no commit (null: caught up, or not watched) */
  behind_sec: number | null
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
SELECT topic, partition, next_offset, end_offset, greatest(end_offset - next_offset, 0) AS lag,
       end_offset_at, updated_at, round(extract(epoch FROM now() - behind_since))::int AS behind_sec
FROM etl_offsets ORDER BY topic, partition`

/**
 * The ETL's health as PostgreSQL holds it: its last commit, its lag, and whether it is stalled.
 * A partition is **stalled** when messages wait for it and it has been behind, with no commit,
 * for longer than `stallSec` (`behind_since` is set by the continuous ETL's watchdog and cleared
 * by every commit). The watchdog, `/ready`, `/metrics`, `/pipeline/status` and so the dashboard
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
      stalled: (behind ?? 0) > 0 && r.behind_sec !== null && r.behind_sec > stallSec,
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
