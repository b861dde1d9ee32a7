import type pg from 'pg'

export interface MaintenanceSummary {
  /** daily partitions created ahead of time */
  partitionsCreated: number
  /** partitions dropped by the retention setting, by name */
  partitionsDropped: string[]
  /** 1-minute rollup rows deleted with them (hourly rollups are kept) */
  rollupRowsDeleted: number
  analyzed: string[]
  durationMs: number
}

/** How far ahead daily partitions exist, so a day never starts without one. */
export const PARTITION_DAYS_AHEAD = 7

/**
 * Keeps the storage in shape between loads: creates the coming days' partitions, drops whole
 * partitions older than `retentionDays` (0 keeps everything) with their minute rollups, and
 * refreshes the planner's statistics. The built-in scheduler and the Airflow DAG's
 * `refresh_summaries` task run it (`evf db maintain`).
 */
export async function maintain(pool: pg.Pool, retentionDays: number): Promise<MaintenanceSummary> {
  const t0 = Date.now()
  const { rows: made } = await pool.query<{ n: number }>(
    `SELECT sensor_data_ensure_partitions(now() - interval '1 day', now() + make_interval(days => $1)) AS n`,
    [PARTITION_DAYS_AHEAD],
  )
  let dropped: string[] = []
  let rollupRowsDeleted = 0
  if (retentionDays > 0) {
    // Whole UTC days only: a partition goes when all of its day is older than the cutoff.
    const cutoff = `date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - make_interval(days => $1)`
    const { rows } = await pool.query<{ name: string }>(
      `SELECT sensor_data_drop_partitions_before(${cutoff}) AS name`,
      [retentionDays],
    )
    dropped = rows.map((r) => r.name)
    const deleted = await pool.query(`DELETE FROM rollup_1m WHERE bucket < ${cutoff}`, [retentionDays])
    rollupRowsDeleted = deleted.rowCount ?? 0
  }
  // The commits feed only the current ingest rate: the last hour is plenty.
  await pool.query(`DELETE FROM etl_commits WHERE committed_at < now() - interval '1 hour'`)
  const analyzed = ['sensor_data', 'rollup_1m', 'rollup_1h', 'dead_letters', 'etl_offsets']
  for (const table of analyzed) await pool.query(`ANALYZE ${table}`)
  return {
    partitionsCreated: made[0]?.n ?? 0,
    partitionsDropped: dropped,
    rollupRowsDeleted,
    analyzed,
    durationMs: Date.now() - t0,
  }
}
