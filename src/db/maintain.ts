import type pg from 'pg'

export interface MaintenanceSummary {
  analyzed: string[]
  durationMs: number
}

/**
 * Keeps the storage in shape between loads: the planner's statistics refreshed after large
 * loads. The scheduler and the Airflow DAG's `refresh_summaries` task run it (`evf db maintain`).
 */
export async function maintain(pool: pg.Pool): Promise<MaintenanceSummary> {
  const t0 = Date.now()
  const analyzed = ['sensor_data', 'dead_letters', 'etl_offsets']
  for (const table of analyzed) await pool.query(`ANALYZE ${table}`)
  return { analyzed, durationMs: Date.now() - t0 }
}
