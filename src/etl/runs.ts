import type { Pool } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'

/**
 * `etl_runs`: one row per ETL run, for /pipeline/status and /metrics. A bounded run writes its
 * row at start and its outcome at the end; a continuous ETL keeps its row's counts current.
 * Bookkeeping never fails a load: a write that fails is logged and skipped.
 */
export class RunRecord {
  private id: number | undefined

  private constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  static async start(
    pool: Pool,
    log: Logger,
    mode: 'bounded' | 'continuous' | 'scheduled',
  ): Promise<RunRecord> {
    const record = new RunRecord(pool, log)
    try {
      const { rows } = await pool.query<{ id: number }>(
        'INSERT INTO etl_runs (mode) VALUES ($1) RETURNING id',
        [mode],
      )
      record.id = rows[0]?.id
    } catch (error) {
      log.warn({ err: String(error) }, 'could not record the ETL run')
    }
    return record
  }

  async progress(rows: number, deadLetters: number): Promise<void> {
    await this.write('UPDATE etl_runs SET rows = $2, dead_letters = $3 WHERE id = $1', [rows, deadLetters])
  }

  async finish(outcome: { rows: number; deadLetters: number; error?: string }): Promise<void> {
    await this.write(
      `UPDATE etl_runs SET finished_at = now(), status = $2, rows = $3, dead_letters = $4, error = $5 WHERE id = $1`,
      [outcome.error ? 'failed' : 'ok', outcome.rows, outcome.deadLetters, outcome.error ?? null],
    )
  }

  private async write(sql: string, params: unknown[]): Promise<void> {
    if (this.id === undefined) return
    try {
      await this.pool.query(sql, [this.id, ...params])
    } catch (error) {
      this.log.warn({ err: String(error) }, 'could not record the ETL run')
    }
  }
}
