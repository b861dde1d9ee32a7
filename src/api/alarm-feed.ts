import {
  ALARMS_CHANNEL,
  type AlarmView,
  type LoadedListener,
  listAlarms,
  listenChannel,
  type Pool,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { retry } from '../shared/retry.ts'
import { ALARM_STATE_NAMES, type Alarm } from './schemas-alarms.ts'

/** What `GET /alarms` lists by default and `event: alarm` carries: every alarm not NORMAL. */
export const NOT_NORMAL: readonly string[] = ALARM_STATE_NAMES.filter((s) => s !== 'NORMAL')

/** A time PostgreSQL answered (a Date, whatever the row's declared type) as RFC 3339. */
export const iso = (t: string | Date | null): string | null => (t === null ? null : new Date(t).toISOString())

/** An alarm as the API answers it. */
export function alarmJson(a: AlarmView): Alarm {
  return {
    station: a.station,
    measurement: a.measurement,
    rule: a.rule,
    state: a.state as Alarm['state'],
    severity: a.severity as Alarm['severity'],
    kind: a.kind as Alarm['kind'],
    subject: a.subject,
    active: a.active,
    value: a.value,
    since: iso(a.since)!,
    shelved_until: iso(a.shelved_until),
    notified_at: iso(a.notified_at),
  }
}

type Listener = (json: string) => void

/**
 * The alarms as they change, behind the stream's `event: alarm`: one LISTEN on the alarms'
 * channel per API process, whatever the number of clients. Each transition and rule change is
 * announced there; changes within `debounceMs` are read once, and every subscriber gets the alarms
 * not NORMAL as JSON text (a new subscriber gets them at once too). It connects on the first subscriber and reconnects if PostgreSQL
 * restarts, reading the alarms again then (changes may have been missed meanwhile).
 */
export class AlarmFeed {
  private readonly listeners = new Set<Listener>()
  private client: LoadedListener | undefined
  private loop: Promise<void> | undefined
  private timer: NodeJS.Timeout | undefined
  private queue: Promise<void> = Promise.resolve()
  private readonly closing = new AbortController()

  constructor(
    private readonly pool: Pool,
    private readonly log: Logger | undefined,
    private readonly debounceMs = 250,
  ) {}

  /** Calls `fn` with the alarms now, then after every change, until the returned function is called. */
  subscribe(fn: Listener): () => void {
    this.listeners.add(fn)
    this.keepListening()
    this.queue = this.queue.then(() => this.deliver([fn]))
    return () => this.listeners.delete(fn)
  }

  private keepListening(): void {
    if (this.loop || this.client || this.closing.signal.aborted) return
    const listen = async () => {
      this.client = await listenChannel(
        this.pool,
        ALARMS_CHANNEL,
        () => this.changed(),
        (error) => {
          this.log?.warn({ err: String(error) }, 'alarm feed connection lost; reconnecting')
          this.client = undefined
          this.keepListening()
        },
      )
    }
    this.loop = retry(listen, { signal: this.closing.signal })
      .then(() => this.changed())
      .catch(() => undefined)
      .finally(() => {
        this.loop = undefined
        if (!this.client) this.keepListening()
      })
  }

  private changed(): void {
    if (this.timer || this.listeners.size === 0 || this.closing.signal.aborted) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.queue = this.queue.then(() => this.deliver(this.listeners))
    }, this.debounceMs)
  }

  private async deliver(to: Iterable<Listener>): Promise<void> {
    const targets = [...to].filter((fn) => this.listeners.has(fn))
    if (targets.length === 0) return
    try {
      const json = JSON.stringify((await listAlarms(this.pool, NOT_NORMAL)).map(alarmJson))
      for (const fn of targets) if (this.listeners.has(fn)) fn(json)
    } catch (error) {
      this.log?.warn({ err: String(error) }, 'alarm feed could not read the alarms')
    }
  }

  async close(): Promise<void> {
    this.closing.abort()
    clearTimeout(this.timer)
    this.listeners.clear()
    await this.loop
    await this.queue
    await this.client?.close()
    this.client = undefined
  }
}
