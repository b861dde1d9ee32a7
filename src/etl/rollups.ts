/**
 * The 1-minute and 1-hour rollups of a batch, built as the ETL transforms it: its readings are
 * aggregated here in Node (they are already parsed) into a few dozen rows per batch, which the
 * load transaction merges into `rollup_1m` and `rollup_1h` (db/queries/rollups.ts).
 */
import type { Catalog } from '../catalog/index.ts'
import type { Aggregate, Rollups } from '../db/index.ts'

const MINUTE = 60
const HOUR = 3600

const emptyAggregate = (
  station: string,
  field: string,
  category: string,
  bucket: number,
  numeric: boolean,
) => ({
  station,
  field,
  category,
  bucket,
  n: 0,
  sum: numeric ? 0 : null,
  sumsq: numeric ? 0 : null,
  min: numeric ? Number.POSITIVE_INFINITY : null,
  max: numeric ? Number.NEGATIVE_INFINITY : null,
})

/**
 * Aggregates readings as the ETL transforms them, so the parsed readings need not outlive the
 * transform (keeping them until the commit made them survive into V8's old space). Per station,
 * measurement of the batch's catalog, category (an enum's or boolean's value) and minute; the
 * hours are summed from the minutes.
 */
export class RollupBuilder {
  private readonly minutes = new Map<string, Aggregate>()

  constructor(private readonly catalog: Catalog) {}

  add(station: string, timestamp: number, reading: Readonly<Record<string, unknown>>): void {
    const bucket = Math.floor(timestamp / MINUTE) * MINUTE
    for (const { name, numeric } of this.catalog.station(station)?.measurements ?? []) {
      const v = reading[name]
      const category = numeric ? '' : String(v)
      const key = `${station}|${name}|${category}|${bucket}`
      let a = this.minutes.get(key)
      if (!a) {
        a = emptyAggregate(station, name, category, bucket, numeric)
        this.minutes.set(key, a)
      }
      a.n++
      if (numeric && typeof v === 'number') {
        a.sum = (a.sum as number) + v
        a.sumsq = (a.sumsq as number) + v * v
        if (v < (a.min as number)) a.min = v
        if (v > (a.max as number)) a.max = v
      }
    }
  }

  build(): Rollups {
    const hours = new Map<string, Aggregate>()
    for (const m of this.minutes.values()) {
      const bucket = Math.floor(m.bucket / HOUR) * HOUR
      const key = `${m.station}|${m.field}|${m.category}|${bucket}`
      let h = hours.get(key)
      if (!h) {
        h = emptyAggregate(m.station, m.field, m.category, bucket, m.sum !== null)
        hours.set(key, h)
      }
      h.n += m.n
      if (h.sum !== null) {
        h.sum += m.sum as number
        h.sumsq = (h.sumsq as number) + (m.sumsq as number)
        h.min = Math.min(h.min as number, m.min as number)
        h.max = Math.max(h.max as number, m.max as number)
      }
    }
    return { minute: sorted([...this.minutes.values()]), hour: sorted([...hours.values()]) }
  }
}

/** One order for every worker: two transactions merging overlapping keys wait, never deadlock. */
const sorted = (aggs: Aggregate[]) =>
  aggs.sort(
    (a, b) =>
      a.station.localeCompare(b.station) ||
      a.field.localeCompare(b.field) ||
      a.category.localeCompare(b.category) ||
      a.bucket - b.bucket,
  )
