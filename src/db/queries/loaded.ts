import pg from 'pg'
import type { Pool } from '../pool.ts'

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

/** A connection that listens on `LOADED_CHANNEL`. */
export interface LoadedListener {
  close(): Promise<void>
}

/**
 * Opens a connection of its own to the server of `pool` and listens on `LOADED_CHANNEL`:
 * `onLoaded` gets each commit's message (for `decodeLoaded`), `onLost` the error that ends the
 * connection once it was listening. Rejects if it cannot connect and listen.
 */
export function listenLoaded(
  pool: Pool,
  onLoaded: (payload: string | undefined) => void,
  onLost: (error: Error) => void,
): Promise<LoadedListener> {
  return listenChannel(pool, LOADED_CHANNEL, onLoaded, onLost)
}

/** A connection of its own listening on `channel` (a constant of this module or another query module). */
export async function listenChannel(
  pool: Pool,
  channel: string,
  onMessage: (payload: string | undefined) => void,
  onLost: (error: Error) => void,
): Promise<LoadedListener> {
  const client = new pg.Client(pool.options)
  client.on('notification', (n) => onMessage(n.payload))
  let listening = false
  client.on('error', (error) => {
    if (listening) onLost(error)
  })
  try {
    await client.connect()
    await client.query(`LISTEN ${channel}`)
  } catch (error) {
    await client.end().catch(() => undefined)
    throw error
  }
  listening = true
  return { close: () => client.end().catch(() => undefined) }
}
