import pg from 'pg'
import { decodeLoaded, LOADED_CHANNEL } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { backoff } from '../shared/time.ts'
import { readingJson } from './reading.ts'

/** A reading as the stream sends it: its id and its JSON in the /sensor-data shape. */
export interface LiveReading {
  id: number
  station: string
  json: string
}

type Listener = (readings: LiveReading[]) => void

/** Rows of the source ranges one load transaction committed (its `evf_loaded` notification). */
const ROWS_OF_RANGES = `
SELECT s.id, s.station, ${readingJson('s')}::text AS json
FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS r(topic, partition, lo, hi)
JOIN sensor_data s ON s.source_topic = r.topic AND s.source_partition = r.partition
  AND s.source_offset >= r.lo AND s.source_offset < r.hi
ORDER BY s.id LIMIT 20000`

/**
 * The live feed behind `/sensor-data/stream`: one LISTEN connection per API process, whatever
 * the number of clients. The ETL notifies `evf_loaded` with the source ranges each load
 * transaction committed (in commit order); the feed reads those rows once and hands them to
 * every subscriber. It connects on the first subscriber and reconnects if PostgreSQL restarts.
 */
export class LiveFeed {
  private readonly listeners = new Set<Listener>()
  private client: pg.Client | undefined
  private connecting: Promise<void> | undefined
  /** failed connection attempts in a row, for the backoff */
  private attempts = 0
  private queue: Promise<void> = Promise.resolve()
  private closed = false
  /** told of every commit (and of a lost connection, when commits may have been missed) */
  private readonly onChange = new Set<() => void>()

  constructor(
    private readonly pool: pg.Pool,
    private readonly log: Logger | undefined,
  ) {}

  /** True while the LISTEN connection is up: every commit is then seen. */
  get listening(): boolean {
    return this.client !== undefined
  }

  /** Calls `fn` on every load commit, and whenever commits may have been missed. */
  onCommit(fn: () => void): void {
    this.onChange.add(fn)
  }

  /** Connects now rather than at the first subscriber; retries in the background if it fails. */
  start(): void {
    void this.connect().catch(() => undefined)
  }

  /** Subscribes; resolves once the feed is listening, so nothing committed after it is missed. */
  async subscribe(listener: Listener): Promise<() => void> {
    this.listeners.add(listener)
    await this.connect()
    return () => this.listeners.delete(listener)
  }

  private connect(): Promise<void> {
    if (this.client || this.closed) return Promise.resolve()
    this.connecting ??= (async () => {
      const client = new pg.Client(this.pool.options)
      client.on('notification', (n) => {
        for (const fn of this.onChange) fn()
        if (n.payload) this.queue = this.queue.then(() => this.deliver(n.payload!))
      })
      const retry = () => {
        this.attempts++
        if (!this.closed)
          setTimeout(() => void this.connect().catch(() => undefined), backoff(this.attempts)).unref()
      }
      client.on('error', (error) => {
        this.log?.warn({ err: String(error) }, 'live feed connection lost; reconnecting')
        this.client = undefined
        for (const fn of this.onChange) fn()
        retry()
      })
      try {
        await client.connect()
        await client.query(`LISTEN ${LOADED_CHANNEL}`)
      } catch (error) {
        await client.end().catch(() => undefined)
        retry()
        throw error
      }
      this.client = client
      this.attempts = 0
      // Commits made while not listening were not seen.
      for (const fn of this.onChange) fn()
    })().finally(() => {
      this.connecting = undefined
    })
    return this.connecting
  }

  private async deliver(payload: string): Promise<void> {
    if (this.listeners.size === 0) return
    try {
      const ranges = decodeLoaded(payload)
      const { rows } = await this.pool.query<LiveReading>(ROWS_OF_RANGES, [
        ranges.map((r) => r.topic),
        ranges.map((r) => r.partition),
        ranges.map((r) => String(r.from)),
        ranges.map((r) => String(r.to)),
      ])
      if (rows.length > 0) for (const l of this.listeners) l(rows)
    } catch (error) {
      this.log?.warn({ err: String(error) }, 'live feed could not read a loaded batch')
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.listeners.clear()
    await this.connecting?.catch(() => undefined)
    await this.client?.end().catch(() => undefined)
    this.client = undefined
  }
}
