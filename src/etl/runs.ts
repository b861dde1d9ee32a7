import {
  finishRun,
  insertRun,
  type Pool,
  type RunMode,
  type RunOutcome,
  updateRunCounts,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'

/**
 * An ETL run's row in `etl_runs`. A bounded run writes its row at start and its outcome at the
 * end; a continuous ETL keeps its row's counts current. Bookkeeping never fails a load: a write
 * that fails is logged and skipped.
 */
export class RunRecord {
  private id: number | undefined

  private constructor(
    private readonly pool: Pool,
    private readonly log: Logger,
  ) {}

  static async start(pool: Pool, log: Logger, mode: RunMode): Promise<RunRecord> {
    const record = new RunRecord(pool, log)
    try {
      record.id = await insertRun(pool, mode)
    } catch (error) {
      log.warn({ err: String(error) }, 'could not record the ETL run')
    }
    return record
  }

  progress(rows: number, deadLetters: number): Promise<void> {
    return this.write((id) => updateRunCounts(this.pool, id, rows, deadLetters))
  }

  finish(outcome: RunOutcome): Promise<void> {
    return this.write((id) => finishRun(this.pool, id, outcome))
  }

  private async write(statement: (id: number) => Promise<void>): Promise<void> {
    if (this.id === undefined) return
    try {
      await statement(this.id)
    } catch (error) {
      this.log.warn({ err: String(error) }, 'could not record the ETL run')
    }
  }
}
