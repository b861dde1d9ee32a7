import type { Pool } from '../pool.ts'

/** `etl_runs`: one row per ETL run, for /pipeline/status and /metrics. */
export type RunMode = 'bounded' | 'continuous' | 'scheduled'

export interface RunOutcome {
  rows: number
  deadLetters: number
  /** set when the run failed */
  error?: string
}

/** Records that a run started; its id. */
export async function insertRun(pool: Pool, mode: RunMode): Promise<number | undefined> {
  const { rows } = await pool.query<{ id: number }>('INSERT INTO etl_runs (mode) VALUES ($1) RETURNING id', [
    mode,
  ])
  return rows[0]?.id
}

/** A running run's counts so far. */
export async function updateRunCounts(
  pool: Pool,
  id: number,
  rows: number,
  deadLetters: number,
): Promise<void> {
  await pool.query('UPDATE etl_runs SET rows = $2, dead_letters = $3 WHERE id = $1', [id, rows, deadLetters])
}

/** A run's end: `failed` with its error, else `ok`. */
export async function finishRun(pool: Pool, id: number, outcome: RunOutcome): Promise<void> {
  await pool.query(
    'UPDATE etl_runs SET finished_at = now(), status = $2, rows = $3, dead_letters = $4, error = $5 WHERE id = $1',
    [id, outcome.error ? 'failed' : 'ok', outcome.rows, outcome.deadLetters, outcome.error ?? null],
  )
}
