/**
 * What the dashboard says about alarms (docs/alarms.md): the ISA-18.2 states in words, the
 * severities in order, and the banner's counts. The names are the API's (schemas-alarms.ts),
 * repeated here as types only so that the page does not bundle the server's schemas.
 */
import type { Alarm, AlarmState, Severity } from './api.ts'

export const SEVERITIES = ['critical', 'high', 'medium', 'low'] as const satisfies readonly Severity[]

/** What ISA-18.2 annunciates (`GET /alarms?state=active`): active, acknowledged or not, and returned unacknowledged. */
export const ANNUNCIATED: readonly AlarmState[] = ['UNACK', 'ACKED', 'RTNUN']
/** Waiting for an operator's acknowledgement. */
export const UNACKNOWLEDGED: readonly AlarmState[] = ['UNACK', 'RTNUN']

export const STATE_WORDS: Record<AlarmState, string> = {
  NORMAL: 'Normal',
  UNACK: 'Active, unacknowledged',
  ACKED: 'Active, acknowledged',
  RTNUN: 'Returned to normal, unacknowledged',
  SHELVED: 'Shelved',
  OUT_OF_SERVICE: 'Out of service',
}

export interface AlarmCounts {
  bySeverity: Record<Severity, number>
  /** annunciated alarms in all */
  total: number
  /** of them, not yet acknowledged */
  unacknowledged: number
}

/** The banner's numbers: the annunciated alarms by severity, and how many await acknowledgement. */
export function countAlarms(alarms: readonly Alarm[]): AlarmCounts {
  const bySeverity: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0 }
  let total = 0
  let unacknowledged = 0
  for (const a of alarms) {
    if (!ANNUNCIATED.includes(a.state)) continue
    bySeverity[a.severity]++
    total++
    if (UNACKNOWLEDGED.includes(a.state)) unacknowledged++
  }
  return { bySeverity, total, unacknowledged }
}

/** An alarm's identity: its rule and, for a stale rule, its sensor. */
export const alarmKey = (a: { rule: string; subject: string }): string => `${a.rule}\u0000${a.subject}`

/** The actions an operator is offered in each state (the API answers 409 to the others). */
export function actionsFor(state: AlarmState): ('acknowledge' | 'shelve' | 'unshelve')[] {
  if (state === 'SHELVED') return ['shelve', 'unshelve']
  if (state === 'OUT_OF_SERVICE' || state === 'NORMAL') return []
  return UNACKNOWLEDGED.includes(state) ? ['acknowledge', 'shelve'] : ['shelve']
}

/** The shelve lengths offered, in minutes (the API takes 1 to 7 days' worth). */
export const SHELVE_MINUTES = [15, 60, 240, 480, 1440, 10080] as const

export function minutesText(m: number): string {
  if (m < 60) return `${m} min`
  if (m < 1440) return `${m / 60} h`
  return `${m / 1440} d`
}
