/**
 * bench:soak's latency from a reading to the moment it is queryable. A LISTEN client stamps the
 * arrival of each commit notification of the ETL (payload: the source ranges the transaction
 * loaded, delivered at commit) and keeps only those ranges in memory; after the run one query
 * joins sensor_data against them: latency = arrival − reading_time (the simulator's timestamp).
 */
import pg from 'pg'
import { decodeLoaded, LOADED_CHANNEL, type Pool } from '../src/db/index.ts'
import { progress } from './harness/index.ts'

/** Source ranges committed, column-wise (as the query takes them); `arrival` in epoch ms. */
export interface Ranges {
  arrival: number[]
  topic: string[]
  partition: number[]
  from: string[]
  to: string[]
}

export class CommitLog {
  readonly ranges: Ranges = { arrival: [], topic: [], partition: [], from: [], to: [] }
  /** arrival time of each commit notification, epoch ms */
  readonly commits: number[] = []
  /** messages covered by the notifications (rows and dead letters of batches that had rows) */
  covered = 0
  /** times the LISTEN connection was lost (commits meanwhile are not measured) */
  disconnects = 0
  private client: pg.Client | undefined
  private closed = false

  constructor(private readonly url: string) {}

  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url, application_name: 'bench-soak-listen' })
    client.on('notification', (n) => {
      const at = Date.now()
      if (n.channel !== LOADED_CHANNEL || !n.payload) return
      this.commits.push(at)
      for (const { topic, partition, from, to } of decodeLoaded(n.payload)) {
        this.ranges.arrival.push(at)
        this.ranges.topic.push(topic)
        this.ranges.partition.push(partition)
        this.ranges.from.push(String(from))
        this.ranges.to.push(String(to))
        this.covered += Number(to - from)
      }
    })
    client.on('error', (error) => {
      if (this.closed) return
      this.disconnects++
      progress(`LISTEN connection lost (${error.message}); reconnecting — commits meanwhile are not measured`)
      this.client = undefined
      setTimeout(() => void this.start().catch(() => undefined), 1000)
    })
    await client.connect()
    await client.query(`LISTEN ${LOADED_CHANNEL}`)
    this.client = client
  }

  async stop(): Promise<void> {
    this.closed = true
    await this.client?.end().catch(() => undefined)
  }
}

export interface Percentiles {
  n: number
  p50: number | null
  p99: number | null
  max: number | null
}
export interface Bucket extends Percentiles {
  /** bucket start, seconds since t0 (commit time) */
  t: number
}
export interface LatencyStats {
  overall: Percentiles
  /** readings taken at or after `steadyFrom`: without the start-up transient */
  steady: Percentiles
  buckets: Bucket[]
  /** per window asked for (ramp steps), by commit time */
  windows: Percentiles[]
}

const pct = (alias = '') => `count(*)::int AS n,
  percentile_disc(0.5) WITHIN GROUP (ORDER BY ${alias}ms) AS p50,
  percentile_disc(0.99) WITHIN GROUP (ORDER BY ${alias}ms) AS p99,
  max(${alias}ms) AS max`

// One pass: the rows of every range committed, their latency, then three aggregates of it.
// LATERAL … OFFSET 0 (which the planner cannot flatten into a join): one index range scan of the
// source key per range. Flattened, it merge-joins on topic and partition and tests every row
// against every range of its partition: 37 s for 1M rows, against 2 s (3M rows: 4 s). The
// reading_time bounds let it skip the daily partitions the run cannot touch.
const LATENCY = `
WITH r AS (
  SELECT * FROM unnest($1::float8[], $2::text[], $3::int[], $4::bigint[], $5::bigint[])
    AS r(arrival_ms, topic, part, lo, hi)
), lat AS MATERIALIZED (
  SELECT r.arrival_ms, r.arrival_ms - extract(epoch FROM s.reading_time)::float8 * 1000 AS ms
  FROM r CROSS JOIN LATERAL (
    SELECT reading_time FROM sensor_data s
    WHERE s.source_topic = r.topic AND s.source_partition = r.part
      AND s.source_offset >= r.lo AND s.source_offset < r.hi
      AND s.reading_time >= to_timestamp($6::float8 / 1000) AND s.reading_time < to_timestamp($7::float8 / 1000)
    OFFSET 0) s
)
SELECT
  (SELECT row_to_json(o) FROM (SELECT ${pct()} FROM lat) o) AS overall,
  (SELECT row_to_json(o) FROM (SELECT ${pct()} FROM lat WHERE arrival_ms - ms >= $12::float8) o) AS steady,
  (SELECT coalesce(json_agg(b ORDER BY b.t), '[]') FROM (
     SELECT floor((arrival_ms - $8::float8) / $9::float8) * $9::float8 / 1000 AS t, ${pct()} FROM lat GROUP BY 1) b) AS buckets,
  (SELECT coalesce(json_agg(w ORDER BY w.i), '[]') FROM (
     SELECT w.i, ${pct('lat.')}
     FROM unnest($10::float8[], $11::float8[]) WITH ORDINALITY AS w(lo, hi, i)
     LEFT JOIN lat ON lat.arrival_ms >= w.lo AND lat.arrival_ms < w.hi GROUP BY w.i) w) AS windows`

/**
 * Latency percentiles (ms) of every row the notifications cover: overall, of the readings taken
 * from `steadyFrom` on, per `bucketMs` of commit time since `t0`, and per window [from, to) of
 * commit time.
 */
export async function latencyStats(
  pool: Pool,
  ranges: Ranges,
  span: { t0: number; end: number; bucketMs: number; steadyFrom: number },
  windows: { from: number; to: number }[] = [],
): Promise<LatencyStats> {
  const client = await pool.connect()
  try {
    // the sorts of a few million latencies in memory rather than in temporary files
    await client.query(`SET work_mem = '256MB'`)
    const { rows } = await client.query<LatencyStats>(LATENCY, [
      ranges.arrival,
      ranges.topic,
      ranges.partition,
      ranges.from,
      ranges.to,
      span.t0 - 3_600_000,
      span.end + 3_600_000,
      span.t0,
      span.bucketMs,
      windows.map((w) => w.from),
      windows.map((w) => w.to),
      span.steadyFrom,
    ])
    await client.query('RESET work_mem')
    const row = rows[0]!
    // count(*) of a LEFT JOIN with no match is 1: an empty window has a null max
    const windowStats = row.windows.map((w) => (w.max === null ? { ...w, n: 0 } : w))
    return { ...row, windows: windowStats }
  } finally {
    client.release()
  }
}

export interface Gap {
  /** longest time between two consecutive commits while there was lag, ms */
  longestMs: number
  /** when it started, ms since t0 */
  atMs: number
  /** time since the last commit at the end of the measurement, if lag was still > 0 then, ms */
  openMs: number
}

/**
 * The longest pause between two consecutive commit notifications during which the sampled lag
 * was above 0 (there was work), and how long commits had stopped at `end` if lag remained.
 */
export function commitGaps(
  commits: readonly number[],
  lag: readonly { t: number; lag: number }[],
  t0: number,
  end: number,
): Gap {
  // samples are a second apart: the one just before a short gap says whether there was work
  const busy = (a: number, b: number) => lag.some((s) => s.t >= a - 1000 && s.t <= b && s.lag > 0)
  let longestMs = 0
  let atMs = 0
  for (let i = 1; i < commits.length; i++) {
    const gap = commits[i]! - commits[i - 1]!
    if (gap > longestMs && busy(commits[i - 1]!, commits[i]!)) {
      longestMs = gap
      atMs = commits[i - 1]! - t0
    }
  }
  const last = commits.at(-1) ?? t0
  const finalLag = lag.at(-1)?.lag ?? 0
  return { longestMs, atMs, openMs: finalLag > 0 ? end - last : 0 }
}
