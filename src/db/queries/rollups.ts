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

const merge = (table: 'rollup_1m' | 'rollup_1h') => `
INSERT INTO ${table} AS r (station, field, category, bucket, n, sum, sumsq, min, max)
SELECT station, field, category, to_timestamp(bucket), n, sum, sumsq, min, max
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::float8[])
  AS u(station, field, category, bucket, n, sum, sumsq, min, max)
ON CONFLICT (station, field, category, bucket) DO UPDATE SET
  n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, sumsq = r.sumsq + EXCLUDED.sumsq,
  min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)`

/** Merges rollups into both tables; `client` is in the transaction that writes their rows. */
export async function mergeRollups(client: pg.ClientBase, rollups: Rollups): Promise<void> {
  for (const [table, aggs] of [
    ['rollup_1m', rollups.minute],
    ['rollup_1h', rollups.hour],
  ] as const) {
    if (aggs.length === 0) continue
    await client.query(merge(table), [
      aggs.map((a) => a.station),
      aggs.map((a) => a.field),
      aggs.map((a) => a.category),
      aggs.map((a) => a.bucket),
      aggs.map((a) => a.n),
      aggs.map((a) => a.sum),
      aggs.map((a) => a.sumsq),
      aggs.map((a) => a.min),
      aggs.map((a) => a.max),
    ])
  }
}
