import {
  decodeLoaded,
  type LiveReading,
  type LoadedListener,
  listenLoaded,
  type Pool,
  readingsOfRanges,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { backoff } from '../shared/time.ts'

type Listener = (readings: LiveReading[]) => void

/**
 * The live feed behind `/sensor-data/stream`: one LISTEN connection per API process, whatever
 * the number of clients. The ETL notifies `evf_loaded` with the source ranges each load
 * transaction committed (in commit order); the feed reads those rows once and hands them to
 * every subscriber. It connects on the first subscriber and reconnects if PostgreSQL restarts.
 */
export class LiveFeed {
  private readonly listeners = new Set<Listener>()
  private client: LoadedListener | undefined
  private connecting: Promise<void> | undefined
  /** failed connection attempts in a row, for the backoff */
  private attempts = 0
  private queue: Promise<void> = Promise.resolve()
  private closed = false
  /** told of every commit (and of a lost connection, when commits may have been missed) */
  private readonly onChange = new Set<() => void>()

  constructor(
    private readonly pool: Pool,
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
      const retry = () => {
        this.attempts++
        if (!this.closed)
          setTimeout(() => void this.connect().catch(() => undefined), backoff(this.attempts)).unref()
      }
      const onLoaded = (payload: string | undefined) => {
        for (const fn of this.onChange) fn()
        if (payload) this.queue = this.queue.then(() => this.deliver(payload))
      }
      const onLost = (error: Error) => {
        this.log?.warn({ err: String(error) }, 'live feed connection lost; reconnecting')
        this.client = undefined
        for (const fn of this.onChange) fn()
        retry()
      }
      try {
        this.client = await listenLoaded(this.pool, onLoaded, onLost)
      } catch (error) {
        retry()
        throw error
      }
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
      const rows = await readingsOfRanges(this.pool, decodeLoaded(payload))
      if (rows.length > 0) for (const l of this.listeners) l(rows)
    } catch (error) {
      this.log?.warn({ err: String(error) }, 'live feed could not read a loaded batch')
    }
  }

  async close(): Promise<void> {
    this.closed = true
    this.listeners.clear()
    await this.connecting?.catch(() => undefined)
    await this.client?.close()
    this.client = undefined
  }
}
