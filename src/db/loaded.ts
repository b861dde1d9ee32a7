/**
 * The message each load transaction sends on `LOADED_CHANNEL` (pg_notify, delivered at commit):
 * the source ranges it committed, one `[topic, partition, from, to)` per partition. The ETL
 * encodes it; the API's live feed and cache, and bench:soak, decode it.
 */
export const LOADED_CHANNEL = 'evf_loaded'

export interface LoadedRange {
  topic: string
  partition: number
  /** first offset loaded */
  from: bigint
  /** one past the last offset loaded */
  to: bigint
}

/** Compact on the wire (a NOTIFY payload is limited to 8,000 bytes): `[[topic, partition, "from", "to"], …]`. */
export function encodeLoaded(ranges: readonly LoadedRange[]): string {
  return JSON.stringify(ranges.map((r) => [r.topic, r.partition, String(r.from), String(r.to)]))
}

export function decodeLoaded(payload: string): LoadedRange[] {
  return (JSON.parse(payload) as [string, number, string, string][]).map(([topic, partition, from, to]) => ({
    topic,
    partition,
    from: BigInt(from),
    to: BigInt(to),
  }))
}
