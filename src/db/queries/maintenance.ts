import type { Pool } from '../pool.ts'

/**
 * Storage upkeep (`maintain`, db/maintain.ts): daily partitions ahead and behind, the minute
 * rollups retention drops with them, the commit log, the planner's statistics.
 */

/** Creates the daily partitions from yesterday to `daysAhead` days from now; how many were new. */
export async function ensurePartitionsAhead(pool: Pool, daysAhead: number): Promise<number> {
  const { rows } = await pool.query<{ n: number }>(
    `SELECT sensor_data_ensure_partitions(now() - interval '1 day', now() + make_interval(days => $1)) AS n`,
    [daysAhead],
  )
  return rows[0]?.n ?? 0
}

// Whole UTC days only: a partition goes when all of its day is older than the cutoff.
const RETENTION_CUTOFF = `date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1)`

/** Drops the daily partitions whose whole day is older than `retentionDays`; their names. */
export async function dropPartitionsBefore(pool: Pool, retentionDays: number): Promise<string[]> {
  const { rows } = await pool.query<{ name: string }>(
    `SELECT sensor_data_drop_partitions_before(${RETENTION_CUTOFF}) AS name`,
    [retentionDays],
  )
  return rows.map((r) => r.name)
}

/** Deletes the 1-minute rollups of the days retention dropped; how many rows. */
export async function deleteMinuteRollupsBefore(pool: Pool, retentionDays: number): Promise<number> {
  const deleted = await pool.query(`DELETE FROM rollup_1m WHERE bucket < ${RETENTION_CUTOFF}`, [
    retentionDays,
  ])
  return deleted.rowCount ?? 0
}

/** Forgets commits older than an hour: they feed only the current ingest rate. */
export async function pruneCommits(pool: Pool): Promise<void> {
  await pool.query(`DELETE FROM etl_commits WHERE committed_at < now() - interval '1 hour'`)
}

/** The tables whose planner statistics maintenance refreshes. */
export const ANALYZED_TABLES = [
  'sensor_data',
  'rollup_1m',
  'rollup_1h',
  'dead_letters',
  'etl_offsets',
] as const

/** Refreshes the planner's statistics of `ANALYZED_TABLES`, one at a time. */
export async function analyzeTables(pool: Pool): Promise<void> {
  for (const table of ANALYZED_TABLES) await pool.query(`ANALYZE ${table}`)
}
