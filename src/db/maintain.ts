import type pg from 'pg'
import {
  ANALYZED_TABLES,
  analyzeTables,
  deleteMinuteRollupsBefore,
  dropPartitionsBefore,
  ensurePartitionsAhead,
  pruneCommits,
} from './queries/maintenance.ts'

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
 * `refresh_summaries` task run it (`evf db maintain`). The statements are in queries/maintenance.ts.
 */
export async function maintain(pool: pg.Pool, retentionDays: number): Promise<MaintenanceSummary> {
  const t0 = Date.now()
  const partitionsCreated = await ensurePartitionsAhead(pool, PARTITION_DAYS_AHEAD)
  let dropped: string[] = []
  let rollupRowsDeleted = 0
  if (retentionDays > 0) {
    dropped = await dropPartitionsBefore(pool, retentionDays)
    rollupRowsDeleted = await deleteMinuteRollupsBefore(pool, retentionDays)
  }
  await pruneCommits(pool)
  await analyzeTables(pool)
  return {
    partitionsCreated,
    partitionsDropped: dropped,
    rollupRowsDeleted,
    analyzed: [...ANALYZED_TABLES],
    durationMs: Date.now() - t0,
  }
}
