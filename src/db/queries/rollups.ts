import type pg from 'pg'

/**
 * `rollup_1m` and `rollup_1h`: per station, catalog field, category and bucket, the count, sum,
 * sum of squares, min and max of a measurement. The ETL aggregates a batch's readings
 * (etl/rollups.ts) and merges them here in its load transaction; counts and sums add up, so
 * merging is exact and the rollups are as exactly-once as the rows.
 */
export interface Aggregate {
  station: string
  field: string
  /** '' for a numeric field, the value for a categorical one */
  category: string
  /** the bucket's start, epoch seconds */
  bucket: number
  n: number
  sum: number | null
  sumsq: number | null
  min: number | null
  max: number | null
}

/** A batch's rollup rows, each list in the one order every worker merges them in. */
export interface Rollups {
  minute: Aggregate[]
  hour: Aggregate[]
}

/** The merge of one table's rollup rows, its nine arrays from parameter `$first` on. */
const merge = (table: 'rollup_1m' | 'rollup_1h', first = 1) => {
  const p = (i: number) => `$${first + i}`
  return `
INSERT INTO ${table} AS r (station, field, category, bucket, n, sum, sumsq, min, max)
SELECT station, field, category, to_timestamp(bucket), n, sum, sumsq, min, max
FROM unnest(${p(0)}::text[], ${p(1)}::text[], ${p(2)}::text[], ${p(3)}::bigint[], ${p(4)}::bigint[], ${p(5)}::float8[], ${p(6)}::float8[], ${p(7)}::float8[], ${p(8)}::float8[])
  AS u(station, field, category, bucket, n, sum, sumsq, min, max)
ON CONFLICT (station, field, category, bucket) DO UPDATE SET
  n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, sumsq = r.sumsq + EXCLUDED.sumsq,
  min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)`
}

/** A table's rollup rows as the nine arrays `merge` takes. */
const columns = (aggs: readonly Aggregate[]) => [
  aggs.map((a) => a.station),
  aggs.map((a) => a.field),
  aggs.map((a) => a.category),
  aggs.map((a) => a.bucket),
  aggs.map((a) => a.n),
  aggs.map((a) => a.sum),
  aggs.map((a) => a.sumsq),
  aggs.map((a) => a.min),
  aggs.map((a) => a.max),
]

/**
 * Both tables' merges as two CTEs (`m`, `h`; parameters $1–$18) for a statement of the caller's
 * that ends the load transaction in one round trip. Every worker sends the same statement, so
 * their row locks on shared buckets are taken in one order and never wait on each other in a
 * cycle.
 */
export function rollupCtes(rollups: Rollups): { ctes: string; values: unknown[] } {
  return {
    ctes: `m AS (${merge('rollup_1m')} RETURNING 1), h AS (${merge('rollup_1h', 10)} RETURNING 1)`,
    values: [...columns(rollups.minute), ...columns(rollups.hour)],
  }
}

/** Merges rollups into both tables; `client` is in the transaction that writes their rows. */
export async function mergeRollups(client: pg.ClientBase, rollups: Rollups): Promise<void> {
  for (const [table, aggs] of [
    ['rollup_1m', rollups.minute],
    ['rollup_1h', rollups.hour],
  ] as const) {
    if (aggs.length > 0) await client.query(merge(table), columns(aggs))
  }
}
