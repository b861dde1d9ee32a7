/**
 * The connection to the API: the stream of readings, catalog versions and alarms (Server-Sent Events) and
 * the banner shown while the API or the stream is unreachable. The browser's EventSource
 * reconnects by itself after a network error (sending Last-Event-ID, so no reading is missed; a
 * catalog version applied meanwhile is not replayed); after an answer it cannot use
 * (a 5xx from a proxy, say) it gives up, and we open a new one with backoff.
 */
import { type Alarm, ApiError, type Reading } from './api.ts'

export class Connection {
  private fetchError: string | null = null
  private streamDown = false
  private stalled: string | null = null
  private received = 0

  constructor(
    private readonly banner: HTMLElement,
    private readonly live: HTMLElement,
  ) {}

  /** Every API request reports here (see api.ts). */
  fetched(ok: boolean, error?: unknown): void {
    this.fetchError = ok ? null : error instanceof ApiError ? `${error.status} ${error.title}` : 'no answer'
    this.render()
  }

  stream(ok: boolean): void {
    this.streamDown = !ok
    this.render()
  }

  /** The ETL's state from /pipeline/status: a sentence while it is stalled, else null. */
  etl(stalled: string | null): void {
    this.stalled = stalled
    this.render()
  }

  reading(): void {
    this.received++
    this.render()
  }

  private render(): void {
    const down = this.fetchError !== null || this.streamDown
    this.banner.hidden = !down && this.stalled === null
    if (this.fetchError?.startsWith('401')) {
      // The API answers, but not to us: no session cookie, or an expired or revoked one.
      this.banner.textContent =
        'Not logged in — open the login URL that `npm start` printed, or make a new one with `evf login-url`.'
    } else if (down) {
      const why = this.fetchError ?? 'the live stream is down'
      this.banner.textContent = `API unreachable — reconnecting… (${why})`
    } else if (this.stalled !== null) {
      this.banner.textContent = this.stalled
    }
    this.live.dataset.state = this.streamDown ? 'down' : 'up'
    this.live.textContent = this.streamDown
      ? 'Stream reconnecting…'
      : `● Live · ${this.received.toLocaleString('en')} readings received`
  }
}

/** What the stream delivers. */
export interface StreamHandlers {
  reading(r: Reading): void
  /** a new catalog version was applied: `/stations` has changed */
  catalog(version: number): void
  /** the alarms not NORMAL, on connecting and after each change (`event: alarm`) */
  alarms(alarms: Alarm[]): void
  /** the stream opened (true) or failed (false) */
  status(ok: boolean): void
}

/** Opens the stream of new readings, catalog versions and alarms, and keeps it open. */
export function openStream(on: StreamHandlers, attempt = 0): void {
  const es = new EventSource('/sensor-data/stream')
  es.addEventListener('open', () => {
    attempt = 0
    on.status(true)
  })
  es.addEventListener('reading', (e) => on.reading(JSON.parse((e as MessageEvent<string>).data) as Reading))
  es.addEventListener('catalog', (e) => {
    const { version } = JSON.parse((e as MessageEvent<string>).data) as { version: number }
    on.catalog(version)
  })
  es.addEventListener('alarm', (e) => on.alarms(JSON.parse((e as MessageEvent<string>).data) as Alarm[]))
  es.addEventListener('error', () => {
    on.status(false)
    if (es.readyState === EventSource.CLOSED) {
      setTimeout(() => openStream(on, attempt + 1), Math.min(30_000, 1000 * 2 ** attempt))
    }
  })
}
