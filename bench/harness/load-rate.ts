/** The ETL's load rate as bench:etl and bench:scale measure it, from the rows it committed. */
import type { Pool } from '../../src/db/index.ts'

export interface LoadSpan {
  rows: number
  dead: number
  /** rows/s from the first commit to the last */
  rate: number
  seconds: number
}

/**
 * From the first row to the last commit: the transactions' own timestamps (created_at = now()).
 * The span starts at the first batch's commit, so that batch's rows are not counted in it.
 */
export async function loadSpan(pool: Pool): Promise<LoadSpan> {
  const { rows } = await pool.query<{ rows: number; dead: number; seconds: number; first_batch: number }>(
    `SELECT count(*)::int AS rows, (SELECT count(*)::int FROM dead_letters) AS dead,
            extract(epoch FROM max(created_at) - min(created_at))::float8 AS seconds,
            (SELECT count(*)::int FROM sensor_data WHERE created_at = (SELECT min(created_at) FROM sensor_data)) AS first_batch
     FROM sensor_data`,
  )
  const s = rows[0]!
  return { rows: s.rows, dead: s.dead, seconds: s.seconds, rate: (s.rows - s.first_batch) / s.seconds }
}
