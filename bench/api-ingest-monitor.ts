/**
 * Watches an ingest while bench:api measures under it: how many readings the simulator produced
 * (Kafka's log-end offsets), how many the ETL loaded (sensor_data rows and etl_offsets), and
 * when the ETL committed (each commit that loads rows notifies the API, which empties its
 * response cache: commits are cache invalidations).
 */
import type { Consumer } from '@platformatic/kafka'
import type { Pool } from '../src/db/index.ts'
import { fmt, progress } from './harness/index.ts'

/** One moment of the ingest, on PostgreSQL's clock. */
export interface Snapshot {
  /** epoch seconds */
  at: number
  /** highest sensor_data id: rows above it were loaded later */
  maxId: number
  /** sum of the ETL's committed positions (rows and dead letters) */
  loaded: number
  /** sum of the topics' log-end offsets */
  produced: number
}

/** What happened between two snapshots. */
export interface SpanStats {
  seconds: number
  /** sensor_data rows loaded */
  rows: number
  /** load transactions that committed rows: API cache invalidations */
  commits: number
  /** longest stretch without a commit, in seconds */
  longestGap: number
  /** readings produced to Kafka */
  produced: number
  /** messages not loaded yet at the end */
  lagEnd: number
}

const SNAPSHOT = `SELECT extract(epoch FROM clock_timestamp())::float8 AS at,
  (SELECT coalesce(max(id), 0) FROM sensor_data)::bigint AS max_id,
  (SELECT coalesce(sum(next_offset), 0) FROM etl_offsets)::bigint AS loaded`

/** The load transactions after `maxId`: their start time (created_at = now()) and rows. */
const COMMITS = `SELECT extract(epoch FROM created_at)::float8 AS t, count(*)::bigint AS n
  FROM sensor_data WHERE id > $1 AND id <= $2 GROUP BY created_at ORDER BY created_at`

export class IngestMonitor {
  private timer: NodeJS.Timeout | undefined
  private last: Snapshot | undefined
  private sampling: Promise<void> | undefined

  constructor(
    private readonly pool: Pool,
    private readonly consumer: Consumer,
    private readonly topics: string[],
  ) {}

  async snapshot(): Promise<Snapshot> {
    const [{ rows }, ends] = await Promise.all([
      this.pool.query<{ at: number; max_id: number; loaded: number }>(SNAPSHOT),
      this.consumer.listOffsets({ topics: this.topics }),
    ])
    let produced = 0
    for (const offsets of ends.values()) for (const o of offsets) produced += Number(o)
    const r = rows[0]!
    return { at: r.at, maxId: r.max_id, loaded: r.loaded, produced }
  }

  /** Prints the produced and loaded rates and the lag every `everyS` seconds from `from` until stopped. */
  start(from: Snapshot, everyS = 5): void {
    this.last = from
    this.timer = setInterval(() => {
      this.sampling ??= this.report().finally(() => {
        this.sampling = undefined
      })
    }, everyS * 1000)
  }

  async stop(): Promise<void> {
    clearInterval(this.timer)
    await this.sampling
  }

  private async report(): Promise<void> {
    try {
      const now = await this.snapshot()
      const prev = this.last
      this.last = now
      if (!prev) return
      const dt = now.at - prev.at
      progress(
        `  ingest: produced ${fmt((now.produced - prev.produced) / dt)}/s, ` +
          `ETL loaded ${fmt((now.loaded - prev.loaded) / dt)}/s, lag ${fmt(now.produced - now.loaded)}`,
      )
    } catch (error) {
      progress(`  ingest: could not sample (${String(error)})`)
    }
  }

  /** From `from` to `to`: rows, commits and the longest gap between them, produced, lag. */
  async span(from: Snapshot, to: Snapshot): Promise<SpanStats> {
    const { rows } = await this.pool.query<{ t: number; n: number }>(COMMITS, [from.maxId, to.maxId])
    let longestGap = 0
    let prev = from.at
    for (const c of rows) {
      longestGap = Math.max(longestGap, c.t - prev)
      prev = Math.max(prev, c.t)
    }
    longestGap = Math.max(longestGap, to.at - prev)
    return {
      seconds: to.at - from.at,
      rows: rows.reduce((n, c) => n + c.n, 0),
      commits: rows.length,
      longestGap,
      produced: to.produced - from.produced,
      lagEnd: to.produced - to.loaded,
    }
  }
}

/** `rows/s (commits/s commits, longest gap)` of a span. */
export const describeSpan = (s: SpanStats): string =>
  `${fmt(s.rows / s.seconds)} rows/s loaded (${fmt(s.commits / s.seconds, 1)} commits/s, longest gap ${s.longestGap.toFixed(1)} s), ` +
  `${fmt(s.produced / s.seconds)} produced/s, lag at end ${fmt(s.lagEnd)}`
