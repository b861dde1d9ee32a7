/**
 * An alarm's lifecycle as ISA-18.2 draws it (docs/alarms.md), with the two things plants add on
 * top: a pending period (Grafana's "for": the condition must hold that long before the alarm is
 * raised) and hysteresis (the rule's evaluator decides `active` with a separate clear threshold, so
 * a value hovering at the limit does not flap). Pure: the clock is an argument, every transition
 * is returned as data for the history, and the state is a plain object PostgreSQL can keep.
 *
 *   NORMAL ──active for `forMs`──▶ UNACK ──ack──▶ ACKED ──clear──▶ NORMAL
 *                                    │ clear                ▲
 *                                    ▼                      │ ack
 *                                  RTNUN ───────────────────┘   (active again: UNACK)
 *   any ──shelve(until)──▶ SHELVED ──unshelve / expiry──▶ UNACK if active, else NORMAL
 *   any ──out of service──▶ OUT_OF_SERVICE ──return to service──▶ NORMAL (then as evaluated)
 */

export const ALARM_STATES = ['NORMAL', 'UNACK', 'ACKED', 'RTNUN', 'SHELVED', 'OUT_OF_SERVICE'] as const
export type AlarmState = (typeof ALARM_STATES)[number]

/** What ISA-18.2 calls each state, for people. */
export const STATE_MEANING: Record<AlarmState, string> = {
  NORMAL: 'normal',
  UNACK: 'active, unacknowledged',
  ACKED: 'active, acknowledged',
  RTNUN: 'returned to normal, unacknowledged',
  SHELVED: 'shelved until an expiry',
  OUT_OF_SERVICE: 'out of service',
}

export interface Alarm {
  state: AlarmState
  /** the rule's condition as last evaluated */
  active: boolean
  /** when the condition became active while NORMAL (the pending period runs from it), in ms */
  pendingSince: number | null
  /** SHELVED: when the shelve ends, in ms */
  shelvedUntil: number | null
  /** the value that last changed the condition */
  value: number | null
}

export const normal = (): Alarm => ({
  state: 'NORMAL',
  active: false,
  pendingSince: null,
  shelvedUntil: null,
  value: null,
})

export type AlarmEvent =
  /** the rule's evaluation: the condition holds (`active`) or not, for this value, at `at` */
  | { kind: 'evaluate'; active: boolean; value: number | null; at: number }
  /** the clock only: a pending period or a shelve may have run out */
  | { kind: 'tick'; at: number }
  | { kind: 'acknowledge'; by: string; comment: string; at: number }
  | { kind: 'shelve'; by: string; comment: string; until: number; at: number }
  | { kind: 'unshelve'; by: string; comment: string; at: number }
  | { kind: 'out-of-service'; by: string; comment: string; at: number }
  | { kind: 'return-to-service'; by: string; comment: string; at: number }

/** One change of state, as the history keeps it. */
export interface Transition {
  from: AlarmState
  to: AlarmState
  at: number
  /** who acted (an operator), or null for the evaluator and the clock */
  by: string | null
  comment: string | null
  value: number | null
  /** why, in words: raised, cleared, acknowledged, shelved, shelve expired, … */
  reason: string
}

export interface Step {
  alarm: Alarm
  transitions: Transition[]
}

/**
 * The alarm after `event`, and the transitions it made (none, one, or two when a pending period
 * ends and the clock moves on in the same step). `forMs` is the rule's pending period.
 */
export function step(alarm: Alarm, event: AlarmEvent, forMs: number): Step {
  const transitions: Transition[] = []
  let a: Alarm = { ...alarm }
  const move = (to: AlarmState, reason: string, by: string | null = null, comment: string | null = null) => {
    if (to === a.state) return
    transitions.push({ from: a.state, to, at: event.at, by, comment, value: a.value, reason })
    a = { ...a, state: to }
  }
  switch (event.kind) {
    case 'evaluate': {
      if (event.active !== a.active) a.value = event.value
      a.active = event.active
      if (!event.active) a.pendingSince = null
      else if (a.pendingSince === null && a.state === 'NORMAL') a.pendingSince = event.at
      if (a.state === 'UNACK' && !event.active) move('RTNUN', 'cleared')
      else if (a.state === 'ACKED' && !event.active) move('NORMAL', 'cleared')
      else if (a.state === 'RTNUN' && event.active) move('UNACK', 'raised again')
      break
    }
    case 'acknowledge':
      if (a.state === 'UNACK') move('ACKED', 'acknowledged', event.by, event.comment)
      else if (a.state === 'RTNUN') move('NORMAL', 'acknowledged', event.by, event.comment)
      break
    case 'shelve':
      if (a.state === 'OUT_OF_SERVICE') break
      a.shelvedUntil = event.until
      if (a.state !== 'SHELVED') move('SHELVED', 'shelved', event.by, event.comment)
      break
    case 'unshelve':
      if (a.state === 'SHELVED') unshelve('unshelved', event.by, event.comment)
      break
    case 'out-of-service':
      a.pendingSince = null
      a.shelvedUntil = null
      move('OUT_OF_SERVICE', 'removed from service', event.by, event.comment)
      break
    case 'return-to-service':
      if (a.state === 'OUT_OF_SERVICE') {
        move('NORMAL', 'returned to service', event.by, event.comment)
        if (a.active) a.pendingSince = event.at
      }
      break
    case 'tick':
      break
  }
  // The clock: a shelve that ran out, a pending period that ended.
  if (a.state === 'SHELVED' && a.shelvedUntil !== null && event.at >= a.shelvedUntil)
    unshelve('shelve expired', null, null)
  if (a.state === 'NORMAL' && a.active && a.pendingSince !== null && event.at - a.pendingSince >= forMs) {
    a.pendingSince = null
    move('UNACK', 'raised')
  }
  return { alarm: a, transitions }

  function unshelve(reason: string, by: string | null, comment: string | null): void {
    a.shelvedUntil = null
    a.pendingSince = null
    // Back to what the condition says now: still active is an alarm to acknowledge again.
    move(a.active ? 'UNACK' : 'NORMAL', reason, by, comment)
  }
}

/** Whether people are told of this state (notifications, the banner). */
export const isAnnunciated = (s: AlarmState): boolean => s === 'UNACK' || s === 'ACKED' || s === 'RTNUN'

/** A rule and an alarm of it, as the history names them. */
export interface HistoryOf {
  rule: { id: string; kind: string; severity: string; station: string | null; measurement: string | null }
  alarm: { subject: string; station: string | null; measurement: string | null }
}

/**
 * A transition as the history keeps it (`alarm_events`): told to people when it raises (to
 * UNACK); `detail` (what the condition saw) joins the reason of a raise or a clear.
 */
export function historyEvent({ rule, alarm }: HistoryOf, t: Transition, detail = '') {
  return {
    rule_id: rule.id,
    subject: alarm.subject,
    station: alarm.station ?? rule.station,
    measurement: alarm.measurement ?? rule.measurement,
    kind: rule.kind,
    severity: rule.severity,
    from_state: t.from,
    to_state: t.to,
    at: t.at,
    by_whom: t.by,
    comment: t.comment,
    value: t.value,
    reason: detail && (t.to === 'UNACK' || t.reason === 'cleared') ? `${t.reason}: ${detail}` : t.reason,
    notify: t.to === 'UNACK',
  }
}
