/** A loader's load rate as bench:etl, bench:scale and bench:connect measure it, from the rows it committed. */
import type { Pool } from '../../src/db/index.ts'

export interface LoadSpan {
  rows: number
  /** the ETL's dead letters (0 for a table other than sensor_data: only the ETL keeps them) */
  dead: number
  /** rows/s from the first commit to the last */
  rate: number
  seconds: number
  /** the first transaction's start, epoch ms: a loader's time to its first row ends here */
  first: number
}

/**
 * From the first row to the last commit in `table` (sensor_data, or a table of its shape another
 * loader filled): the transactions' own timestamps (created_at = now(), its start). The span
 * starts at the first batch's commit, so that batch's rows are not counted in it.
 */
export async function loadSpan(pool: Pool, table = 'sensor_data'): Promise<LoadSpan> {
  if (!/^[a-z_][a-z0-9_]*$/.test(table)) throw new Error(`not a table name: ${table}`)
  const dead = table === 'sensor_data' ? '(SELECT count(*)::int FROM dead_letters)' : '0'
  const { rows } = await pool.query<{
    rows: number
    dead: number
    seconds: number
    first_batch: number
    first: number
  }>(
    `SELECT count(*)::int AS rows, ${dead} AS dead,
            extract(epoch FROM max(created_at) - min(created_at))::float8 AS seconds,
            (extract(epoch FROM min(created_at)) * 1000)::float8 AS first,
            (SELECT count(*)::int FROM ${table} WHERE created_at = (SELECT min(created_at) FROM ${table})) AS first_batch
     FROM ${table}`,
  )
  const s = rows[0]!
  return {
    rows: s.rows,
    dead: s.dead,
    seconds: s.seconds,
    first: s.first,
    rate: (s.rows - s.first_batch) / s.seconds,
  }
}
