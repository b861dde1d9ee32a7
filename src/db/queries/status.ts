/**
 * What the pipeline did, for `/pipeline/status` and `/metrics`: the last ETL run, readings
 * ingested (from the rollups) and dead letters. The ETL's health (lag, stall) is etl-health.ts.
 */
import type { Pool } from '../pool.ts'
import type { DeadLetterRow } from './dead-letters.ts'

/** The newest row of `etl_runs`; its times as JSON text. */
export interface LastRun {
  mode: string
  started_at: string
  finished_at: string | null
  /** ok, failed, or running */
  status: string
  rows: number
  dead_letters: number
  error: string | null
}

export type RecentDeadLetter = Pick<
  DeadLetterRow,
  'id' | 'topic' | 'partition' | 'offset' | 'reason_code' | 'reason' | 'created_at'
>

/** The pipeline's activity in a window of wall-clock time. */
export interface Activity {
  last_run: LastRun | null
  /** readings loaded with a reading time in the window */
  ingested: number
  /** dead letters created in the window, per reason, most first */
  by_reason: { reason_code: string; n: number }[]
  /** the newest 20 of them */
  recent: RecentDeadLetter[]
  /** readings the ETL committed in the last `recentSec` seconds (now, not the window) */
  recent_rows: number
}

const ACTIVITY = `
SELECT
  (SELECT row_to_json(r) FROM (
     SELECT mode, started_at, finished_at, status, rows, dead_letters, error FROM etl_runs ORDER BY id DESC LIMIT 1) r) AS last_run,
  (SELECT coalesce(sum(r.n), 0) FROM rollup_1m r
     JOIN catalog_fields f ON f.position = 0 AND r.station = f.station AND r.field = f.field
     WHERE r.bucket >= date_trunc('minute', $1::timestamptz) AND r.bucket < $2) AS ingested,
  (SELECT coalesce(json_agg(d ORDER BY d.n DESC), '[]') FROM (
     SELECT reason_code, count(*) AS n FROM dead_letters WHERE created_at >= $1 AND created_at < $2 GROUP BY reason_code) d) AS by_reason,
  (SELECT coalesce(json_agg(d), '[]') FROM (
     SELECT id, topic, partition, "offset", reason_code, reason, created_at FROM dead_letters
     WHERE created_at >= $1 AND created_at < $2 ORDER BY id DESC LIMIT 20) d) AS recent,
  (SELECT coalesce(sum(rows), 0) FROM etl_commits WHERE committed_at > now() - make_interval(secs => $3)) AS recent_rows`

/**
 * The last run, readings ingested and dead letters in [from, to), and the readings committed in
 * the last `recentSec` seconds.
 */
export async function activity(pool: Pool, from: Date, to: Date, recentSec: number): Promise<Activity> {
  const { rows } = await pool.query<
    Omit<Activity, 'ingested' | 'recent_rows'> & { ingested: string; recent_rows: string }
  >(ACTIVITY, [from, to, recentSec])
  const row = rows[0]!
  return { ...row, ingested: Number(row.ingested), recent_rows: Number(row.recent_rows) }
}

/** Everything stored: readings per station (from the hourly rollups), open dead letters per reason. */
export interface Totals {
  loaded: { station: string; n: number }[]
  dead: { reason_code: string; n: number }[]
}

const TOTALS = `
SELECT json_build_object(
  'loaded', (SELECT coalesce(json_agg(x), '[]') FROM (
     SELECT r.station, sum(r.n) AS n FROM rollup_1h r
     JOIN catalog_fields f ON f.position = 0 AND r.station = f.station AND r.field = f.field
     GROUP BY r.station) x),
  'dead', (SELECT coalesce(json_agg(x), '[]') FROM (
     SELECT reason_code, count(*) AS n FROM dead_letters WHERE resolved_at IS NULL GROUP BY reason_code) x)) AS m`

export async function totals(pool: Pool): Promise<Totals> {
  const { rows } = await pool.query<{ m: Totals }>(TOTALS)
  return rows[0]!.m
}
