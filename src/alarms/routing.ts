/**
 * Who is told of what, and when (docs/alarms.md), the way Prometheus Alertmanager does it: routes
 * by severity and station to receivers; a group per receiver and station that waits `groupWaitMs`
 * after its first notice so a burst is one message; silences (and maintenance windows, which are
 * silences planned ahead) that keep a notice in the history but send nothing; and a flood guard:
 * past `floodLimit` notices to a receiver in `floodWindowMs`, one summary instead of the rest.
 * Pure: the clock is an argument; the outbox (db) makes what this decides arrive once.
 */
import type { AlarmState } from './lifecycle.ts'

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const
export type Severity = (typeof SEVERITIES)[number]

/** One transition of one alarm, as a notification carries it. */
export interface Notice {
  /** the transition's id in the history: the idempotency key's source */
  id: number
  alarm: string
  station: string
  measurement: string | null
  rule: string
  severity: Severity
  from: AlarmState
  to: AlarmState
  value: number | null
  at: number
}

export interface Route {
  severities?: readonly Severity[]
  stations?: readonly string[]
  receivers: readonly string[]
}

export interface Silence {
  id: string
  stations?: readonly string[]
  measurements?: readonly string[]
  severities?: readonly Severity[]
  rules?: readonly string[]
  startsAt: number
  endsAt: number
}

export interface RoutingPolicy {
  routes: readonly Route[]
  groupWaitMs: number
  floodLimit: number
  floodWindowMs: number
}

/** A message to send: to one receiver, the notices of one group, or a flood summary. */
export interface Message {
  receiver: string
  kind: 'group' | 'flood-summary'
  station: string | null
  notices: Notice[]
  /** notices held back by the flood guard since its last summary (flood-summary only) */
  withheld: number
}

const matches = <T>(list: readonly T[] | undefined, value: T | null): boolean =>
  list === undefined || list.length === 0 || (value !== null && list.includes(value))

/** The receivers of a notice: every route that matches it (none: nobody is told). */
export function receiversOf(notice: Notice, routes: readonly Route[]): string[] {
  const out = new Set<string>()
  for (const r of routes)
    if (matches(r.severities, notice.severity) && matches(r.stations, notice.station))
      for (const receiver of r.receivers) out.add(receiver)
  return [...out]
}

/** The silence in force that covers a notice, if any. */
export function silencedBy(notice: Notice, silences: readonly Silence[], now: number): Silence | undefined {
  return silences.find(
    (s) =>
      s.startsAt <= now &&
      now < s.endsAt &&
      matches(s.stations, notice.station) &&
      matches(s.measurements, notice.measurement) &&
      matches(s.severities, notice.severity) &&
      matches(s.rules, notice.rule),
  )
}

interface Group {
  receiver: string
  station: string
  firstAt: number
  notices: Notice[]
}

/**
 * Groups notices into messages over time. `add` takes a notice as it happens (answering whether a
 * silence kept it); `due` answers the messages whose group wait is over, flood-guarded.
 */
export class Dispatcher {
  private readonly groups = new Map<string, Group>()
  /** per receiver, when its recent messages' notices were sent (for the flood guard) */
  private readonly sent = new Map<string, number[]>()
  private readonly withheld = new Map<string, Notice[]>()

  constructor(private readonly policy: RoutingPolicy) {}

  add(
    notice: Notice,
    silences: readonly Silence[],
    now: number,
  ): { silencedBy?: string; receivers: string[] } {
    const silence = silencedBy(notice, silences, now)
    if (silence) return { silencedBy: silence.id, receivers: [] }
    const receivers = receiversOf(notice, this.policy.routes)
    for (const receiver of receivers) {
      const key = `${receiver}\u0000${notice.station}`
      const g = this.groups.get(key) ?? { receiver, station: notice.station, firstAt: now, notices: [] }
      g.notices.push(notice)
      this.groups.set(key, g)
    }
    return { receivers }
  }

  /** The messages due at `now`, in the order their groups started. */
  due(now: number): Message[] {
    const out: Message[] = []
    const ready = [...this.groups.entries()]
      .filter(([, g]) => now - g.firstAt >= this.policy.groupWaitMs)
      .sort((a, b) => a[1].firstAt - b[1].firstAt)
    for (const [key, g] of ready) {
      this.groups.delete(key)
      const recent = (this.sent.get(g.receiver) ?? []).filter((t) => now - t < this.policy.floodWindowMs)
      if (recent.length + g.notices.length > this.policy.floodLimit) {
        // Over the limit: held back, and said once per window in a summary.
        const held = this.withheld.get(g.receiver) ?? []
        held.push(...g.notices)
        this.withheld.set(g.receiver, held)
        this.sent.set(g.receiver, recent)
        continue
      }
      for (const _ of g.notices) recent.push(now)
      this.sent.set(g.receiver, recent)
      out.push({ receiver: g.receiver, kind: 'group', station: g.station, notices: g.notices, withheld: 0 })
    }
    for (const [receiver, held] of this.withheld) {
      const last = this.summarisedAt.get(receiver)
      if (held.length === 0 || (last !== undefined && now - last < this.policy.floodWindowMs)) continue
      out.push({
        receiver,
        kind: 'flood-summary',
        station: null,
        notices: held.slice(0, 20),
        withheld: held.length,
      })
      this.withheld.set(receiver, [])
      this.summarisedAt.set(receiver, now)
    }
    return out
  }

  private readonly summarisedAt = new Map<string, number>()

  /** Groups still waiting (for /metrics and tests). */
  get pending(): number {
    return this.groups.size
  }
}
