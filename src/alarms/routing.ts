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
  /** why, in words (the history's reason) */
  reason?: string | undefined
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
  kind: 'group' | 'flood-summary' | 'repeat'
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

/** What the router knows when it plans: the time, silences in force, and each receiver's recent messages. */
export interface PlanContext {
  now: number
  silences: readonly Silence[]
  /** per receiver: notices its messages carried in the flood window, and its last flood summary (ms) */
  recent: ReadonlyMap<string, { notices: number; lastSummary: number | null }>
}

/** What to send, and what became of each notice (a silence's id, `flood-guard`, or null: sent). */
export interface Plan {
  messages: Message[]
  routed: { id: number; silencedBy: string | null }[]
}

/**
 * Plans the messages for notices no message carries yet, oldest first. A station's notices wait
 * together until the oldest is `groupWaitMs` old (Alertmanager's group_wait), then go as one
 * message per receiver. Past `floodLimit` notices to a receiver in the window, the receiver gets
 * one summary of what is held back, and nothing more until the window has passed. Notices of a
 * station still in its group wait are left for a later plan.
 */
export function plan(notices: readonly Notice[], policy: RoutingPolicy, ctx: PlanContext): Plan {
  const byStation = new Map<string, Notice[]>()
  for (const n of notices) byStation.set(n.station, [...(byStation.get(n.station) ?? []), n])
  const messages: Message[] = []
  const routed: Plan['routed'] = []
  const recent = new Map([...ctx.recent].map(([r, v]) => [r, { ...v }]))
  const held = new Map<string, Notice[]>()
  for (const [station, group] of byStation) {
    if (ctx.now - Math.min(...group.map((n) => n.at)) < policy.groupWaitMs) continue
    const perReceiver = new Map<string, Notice[]>()
    for (const n of group) {
      const silence = silencedBy(n, ctx.silences, ctx.now)
      routed.push({ id: n.id, silencedBy: silence?.id ?? null })
      if (silence) continue
      for (const r of receiversOf(n, policy.routes)) perReceiver.set(r, [...(perReceiver.get(r) ?? []), n])
    }
    for (const [receiver, list] of perReceiver) {
      const r = recent.get(receiver) ?? { notices: 0, lastSummary: null }
      recent.set(receiver, r)
      if (r.notices + list.length > policy.floodLimit) {
        held.set(receiver, [...(held.get(receiver) ?? []), ...list])
        continue
      }
      r.notices += list.length
      messages.push({ receiver, kind: 'group', station, notices: list, withheld: 0 })
    }
  }
  for (const [receiver, list] of held) {
    const r = recent.get(receiver)!
    if (r.lastSummary === null || ctx.now - r.lastSummary >= policy.floodWindowMs) {
      messages.push({
        receiver,
        kind: 'flood-summary',
        station: null,
        notices: list.slice(0, 20),
        withheld: list.length,
      })
      r.lastSummary = ctx.now
    }
  }
  // A notice only the flood guard kept from every receiver is recorded as such.
  const sentIds = new Set(messages.flatMap((m) => m.notices.map((n) => n.id)))
  const heldIds = new Set([...held.values()].flat().map((n) => n.id))
  for (const r of routed)
    if (r.silencedBy === null && heldIds.has(r.id) && !sentIds.has(r.id)) r.silencedBy = 'flood-guard'
  return { messages, routed }
}
