import type { Pool } from '../pool.ts'

export interface ReplicaLag {
  /** whether the server answering is a standby (in recovery) */
  standby: boolean
  /** seconds its replay is behind the primary: 0 when it has replayed all it received */
  lag_seconds: number | null
  /** WAL received but not yet replayed, in bytes */
  replay_behind_bytes: number | null
}

/**
 * How far a hot standby lags, asked of the standby itself. `now() - pg_last_xact_replay_timestamp()`
 * keeps growing while the primary is idle, so a standby that has replayed everything it received
 * counts as 0 behind.
 */
export async function replicaLag(pool: Pool): Promise<ReplicaLag> {
  const { rows } = await pool.query<{ standby: boolean; lag_seconds: number | null; behind: number | null }>(`
    SELECT pg_is_in_recovery() AS standby,
           CASE WHEN NOT pg_is_in_recovery() THEN NULL
                WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
                ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8 END AS lag_seconds,
           pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8 AS behind`)
  const r = rows[0]!
  return { standby: r.standby, lag_seconds: r.lag_seconds, replay_behind_bytes: r.behind }
}
