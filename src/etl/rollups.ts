import type pg from 'pg'
import { fieldEntries } from '../catalog/index.ts'
import type { LoadRow } from './transform.ts'

/**
 * The 1-minute and 1-hour rollups, kept in the load transaction: a batch's readings are
 * aggregated here in Node (they are already parsed) into a few dozen rows per batch, which are
 * merged into `rollup_1m` and `rollup_1h`. Counts, sums and sums of squares add up, so merging
 * is exact and the rollups are as exactly-once as the rows.
 */
export interface Aggregate {
  station: string
  field: string
  /** '' for a numeric field, the value for a categorical one */
  category: string
  bucket: number
  n: number
  sum: number | null
  sumsq: number | null
  min: number | null
  max: number | null
}

const MINUTE = 60
const HOUR = 3600

/** Aggregates rows per station, catalog field, category and bucket (`width` seconds). */
export function aggregate(rows: readonly LoadRow[], width: number): Aggregate[] {
  const out = new Map<string, Aggregate>()
  for (const r of rows) {
    const bucket = Math.floor(r.timestamp / width) * width
    for (const [field, f] of fieldEntries(r.station)) {
      const v = r.reading[field]
      const category = f.kind === 'enum' ? String(v) : ''
      const key = `${r.station}\u0000${field}\u0000${category}\u0000${bucket}`
      let a = out.get(key)
      if (!a) {
        const numeric = f.kind !== 'enum'
        a = {
          station: r.station,
          field,
          category,
          bucket,
          n: 0,
          sum: numeric ? 0 : null,
          sumsq: numeric ? 0 : null,
          min: numeric ? Number.POSITIVE_INFINITY : null,
          max: numeric ? Number.NEGATIVE_INFINITY : null,
        }
        out.set(key, a)
      }
      a.n++
      if (typeof v === 'number' && a.sum !== null) {
        a.sum += v
        a.sumsq = (a.sumsq ?? 0) + v * v
        a.min = Math.min(a.min ?? v, v)
        a.max = Math.max(a.max ?? v, v)
      }
    }
  }
  // One order for every worker: two transactions merging overlapping keys wait, never deadlock.
  return [...out.values()].sort(
    (a, b) =>
      a.station.localeCompare(b.station) ||
      a.field.localeCompare(b.field) ||
      a.category.localeCompare(b.category) ||
      a.bucket - b.bucket,
  )
}

const merge = (table: 'rollup_1m' | 'rollup_1h') => `
INSERT INTO ${table} AS r (station, field, category, bucket, n, sum, sumsq, min, max)
SELECT station, field, category, to_timestamp(bucket), n, sum, sumsq, min, max
FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::float8[], $7::float8[], $8::float8[], $9::float8[])
  AS u(station, field, category, bucket, n, sum, sumsq, min, max)
ON CONFLICT (station, field, category, bucket) DO UPDATE SET
  n = r.n + EXCLUDED.n, sum = r.sum + EXCLUDED.sum, sumsq = r.sumsq + EXCLUDED.sumsq,
  min = least(r.min, EXCLUDED.min), max = greatest(r.max, EXCLUDED.max)`

/** Merges the batch's aggregates into both rollup tables; `client` is in the load transaction. */
export async function mergeRollups(client: pg.PoolClient, rows: readonly LoadRow[]): Promise<void> {
  if (rows.length === 0) return
  for (const [table, width] of [
    ['rollup_1m', MINUTE],
    ['rollup_1h', HOUR],
  ] as const) {
    const aggs = aggregate(rows, width)
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
