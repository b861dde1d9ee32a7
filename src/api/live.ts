import {
  decodeLoaded,
  type LiveReading,
  type LoadedListener,
  listenLoaded,
  type Pool,
  readingsOfRanges,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { retry } from '../shared/retry.ts'

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
  /** the reconnecting loop, while the feed is not listening */
  private loop: Promise<void> | undefined
  /** the loop's try in progress, if one is */
  private trying: Promise<void> | undefined
  /** why the loop's last try failed, while it waits to try again */
  private lastError: unknown
  private queue: Promise<void> = Promise.resolve()
  private readonly closing = new AbortController()
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
    this.keepListening()
  }

  /** Subscribes; resolves once the feed is listening, so nothing committed after it is missed. */
  async subscribe(listener: Listener): Promise<() => void> {
    this.listeners.add(listener)
    await this.connect()
    return () => this.listeners.delete(listener)
  }

  /**
   * Resolves once listening. While the loop waits between tries, fails at once with the last
   * try's error (a subscriber is not held through an outage); otherwise follows the try in progress.
   */
  private async connect(): Promise<void> {
    if (this.client || this.closing.signal.aborted) return
    this.keepListening()
    if (!this.trying) throw this.lastError
    await this.trying
  }

  /** Tries to LISTEN until it does, with the one `retry` (so the backoff), or until closed. */
  private keepListening(): void {
    if (this.loop || this.client || this.closing.signal.aborted) return
    const once = () => {
      this.trying = this.listen().finally(() => {
        this.trying = undefined
      })
      return this.trying
    }
    this.loop = retry(once, {
      signal: this.closing.signal,
      onRetry: ({ error }) => {
        this.lastError = error
      },
    })
      .catch(() => undefined)
      .finally(() => {
        this.loop = undefined
        // A connection lost before this loop had ended is listened for again.
        if (!this.client) this.keepListening()
      })
  }

  private async listen(): Promise<void> {
    const onLoaded = (payload: string | undefined) => {
      for (const fn of this.onChange) fn()
      if (payload) this.queue = this.queue.then(() => this.deliver(payload))
    }
    const onLost = (error: Error) => {
      this.log?.warn({ err: String(error) }, 'live feed connection lost; reconnecting')
      this.client = undefined
      for (const fn of this.onChange) fn()
      this.keepListening()
    }
    this.client = await listenLoaded(this.pool, onLoaded, onLost)
    // Commits made while not listening were not seen.
    for (const fn of this.onChange) fn()
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
    this.closing.abort()
    this.listeners.clear()
    await this.loop
    await this.client?.close()
    this.client = undefined
  }
}
