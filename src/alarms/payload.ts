/**
 * What a notification says (docs/alarms.md): the JSON a webhook receives and the e-mail an
 * operator reads, both from one versioned payload. Pure: the outbox builds the payload when it
 * queues a message and keeps it, so every attempt (and every channel) sends the same facts; the
 * e-mail is rendered from the payload, not from the live alarm state.
 */
import type { AlarmState } from './lifecycle.ts'
import { type Message, type Notice, SEVERITIES, type Severity } from './routing.ts'

export const PAYLOAD_VERSION = 1

/**
 * What a message is: a group of transitions (routing's `group`), the flood guard's summary, or a
 * reminder that alarms are still unacknowledged (`repeat`, decided by the outbox's repeat timer).
 */
export type PayloadKind = Message['kind'] | 'repeat'

/** A routing `Message`, or a reminder built the same way. */
export type Deliverable = Omit<Message, 'kind'> & { kind: PayloadKind }

export interface PayloadMeta {
  /** the message's idempotency key (the outbox's) */
  key: string
  /** when this payload was built, in ms */
  sentAt: number
  /** the dashboard, linked from the e-mail and given to webhooks */
  dashboardUrl?: string | undefined
}

/** One transition of one alarm, as a payload carries it. */
export interface PayloadAlarm {
  /** the transition's idempotency key, `evf-transition-<id>`: the same in every message carrying it */
  key: string
  alarm: string
  station: string
  measurement: string | null
  rule: string
  severity: Severity
  from: AlarmState
  to: AlarmState
  value: number | null
  /** ISO 8601, UTC */
  at: string
}

export interface NotificationPayload {
  version: typeof PAYLOAD_VERSION
  key: string
  kind: PayloadKind
  receiver: string
  /** the group's station; null for a flood summary (every station) */
  station: string | null
  /** the highest severity of `alarms`, null when there are none */
  severity: Severity | null
  /** flood-summary: how many notices the flood guard held back (the first of them are in `alarms`) */
  withheld: number
  /** ISO 8601, UTC */
  sentAt: string
  dashboardUrl: string | null
  alarms: PayloadAlarm[]
}

export const transitionKey = (noticeId: number): string => `evf-transition-${noticeId}`

/** The highest severity among `notices` (critical first), or null for none. */
export function highestSeverity(notices: readonly { severity: Severity }[]): Severity | null {
  for (const s of SEVERITIES) if (notices.some((n) => n.severity === s)) return s
  return null
}

const alarmOf = (n: Notice): PayloadAlarm => ({
  key: transitionKey(n.id),
  alarm: n.alarm,
  station: n.station,
  measurement: n.measurement,
  rule: n.rule,
  severity: n.severity,
  from: n.from,
  to: n.to,
  value: n.value,
  at: new Date(n.at).toISOString(),
})

/** The payload of `message`: plain JSON (no Date, no undefined), what the outbox keeps and sends. */
export function buildPayload(message: Deliverable, meta: PayloadMeta): NotificationPayload {
  return {
    version: PAYLOAD_VERSION,
    key: meta.key,
    kind: message.kind,
    receiver: message.receiver,
    station: message.station,
    severity: highestSeverity(message.notices),
    withheld: message.withheld,
    sentAt: new Date(meta.sentAt).toISOString(),
    dashboardUrl: meta.dashboardUrl ?? null,
    alarms: message.notices.map(alarmOf),
  }
}

// --- the e-mail ----------------------------------------------------------------------------

export interface RenderedEmail {
  /** the message's idempotency key (the Message-ID is derived from it) */
  key: string
  subject: string
  text: string
  html: string
}

/** What a transition did, in a word or two, for people. */
export function transitionVerb(from: AlarmState, to: AlarmState): string {
  if (to === 'UNACK')
    return from === 'RTNUN' ? 'raised again' : from === 'SHELVED' ? 'unshelved, active' : 'raised'
  if (to === 'ACKED') return 'acknowledged'
  if (to === 'RTNUN') return 'cleared, unacknowledged'
  if (to === 'SHELVED') return 'shelved'
  if (to === 'OUT_OF_SERVICE') return 'removed from service'
  // to NORMAL
  if (from === 'RTNUN') return 'acknowledged'
  if (from === 'SHELVED') return 'unshelved'
  if (from === 'OUT_OF_SERVICE') return 'returned to service'
  return 'cleared'
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`

/** "2 alarms raised, 1 cleared": counts per verb, in the order they first occur. */
function tally(alarms: readonly PayloadAlarm[]): string {
  const counts = new Map<string, number>()
  for (const a of alarms) {
    const verb = transitionVerb(a.from, a.to)
    counts.set(verb, (counts.get(verb) ?? 0) + 1)
  }
  return [...counts]
    .map(([verb, n], i) => (i === 0 ? `${plural(n, 'alarm')} ${verb}` : `${n} ${verb}`))
    .join(', ')
}

/** The headline: the subject without its tag, the first line of the body. */
function headline(p: NotificationPayload): string {
  const where = p.station ?? 'all stations'
  if (p.kind === 'flood-summary')
    return `ALARM FLOOD: ${plural(p.withheld, 'notification')} held back for ${p.receiver}`
  if (p.kind === 'repeat')
    return `${where}: reminder, ${plural(p.alarms.length, 'alarm')} still unacknowledged`
  return `${where}: ${p.alarms.length === 0 ? 'no alarms' : tally(p.alarms)}`
}

/** A header must stay one line: control characters (CR, LF…) become spaces. */
const oneLine = (s: string): string =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing them is the point
  s.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim()

export function subjectOf(p: NotificationPayload): string {
  const tag = p.severity === null ? '[EVF]' : `[EVF ${p.severity.toUpperCase()}]`
  return oneLine(`${tag} ${headline(p)}`)
}

/** `2026-11-28 23:58:49 UTC` from an ISO 8601 instant. */
const readableTime = (iso: string): string => `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`

const where = (a: PayloadAlarm): string =>
  a.measurement === null ? a.station : `${a.station} / ${a.measurement}`

/** What happened to one alarm, for its first line. */
const titleOf = (a: PayloadAlarm): string => `${where(a)}: ${transitionVerb(a.from, a.to)}`

/** The details of one alarm, a line each. */
const detailsOf = (a: PayloadAlarm): string[] => [
  `alarm ${a.alarm}, rule ${a.rule}`,
  `${a.value === null ? '' : `value ${a.value}, `}${readableTime(a.at)}`,
  `${a.from} -> ${a.to}`,
]

/** The lines of one alarm, in plain text: short, for a phone's width. */
const alarmLines = (a: PayloadAlarm): string[] => [
  `${a.severity.toUpperCase()}  ${titleOf(a)}`,
  ...detailsOf(a).map((l) => `  ${l}`),
]

/** What the message is about, said once above the list. */
function intro(p: NotificationPayload): string[] {
  if (p.kind === 'flood-summary')
    return [
      `More notifications than the flood limit allows were due for ${p.receiver}, so they were held back`,
      `and this one summary sent instead. ${plural(p.withheld, 'notification')} held back;` +
        ` ${p.alarms.length < p.withheld ? `the first ${p.alarms.length} are` : 'they are'} listed below.`,
      'See the dashboard for all of them.',
    ]
  if (p.kind === 'repeat')
    return ['These alarms are still unacknowledged. Acknowledge them on the dashboard.']
  return []
}

function footer(p: NotificationPayload): string[] {
  return [`Sent ${readableTime(p.sentAt)} to ${p.receiver}. Message ${p.key}.`]
}

function textBody(p: NotificationPayload): string {
  const lines = [headline(p), '']
  const said = intro(p)
  if (said.length > 0) lines.push(...said, '')
  for (const a of p.alarms) lines.push(...alarmLines(a), '')
  if (p.dashboardUrl !== null) lines.push(`Dashboard: ${p.dashboardUrl}`, '')
  lines.push('--', ...footer(p))
  return `${lines.join('\n')}\n`
}

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)
}

const COLOURS: Record<Severity, string> = {
  critical: '#b00020',
  high: '#c75300',
  medium: '#8a6d00',
  low: '#35618f',
}

function alarmHtml(a: PayloadAlarm): string {
  return (
    `<li style="margin:0 0 12px 0"><b style="color:${COLOURS[a.severity]}">${a.severity.toUpperCase()}</b> ` +
    `<b>${escapeHtml(titleOf(a))}</b><br>${detailsOf(a).map(escapeHtml).join('<br>')}</li>`
  )
}

/** A link only to a web address: anything else is shown as text, never as a `javascript:` href. */
function dashboardHtml(url: string): string {
  const safe = /^https?:\/\//i.test(url)
  return `<p>${safe ? `<a href="${escapeHtml(url)}">Open the dashboard</a>` : `Dashboard: ${escapeHtml(url)}`}</p>`
}

function htmlBody(p: NotificationPayload): string {
  const parts = [
    '<!doctype html><html><head><meta charset="utf-8">',
    '<meta name="viewport" content="width=device-width, initial-scale=1"></head>',
    '<body style="font-family:sans-serif;font-size:15px;line-height:1.4;margin:8px">',
    `<h1 style="font-size:18px;margin:0 0 12px 0">${escapeHtml(headline(p))}</h1>`,
    ...intro(p).map((l) => `<p style="margin:0 0 4px 0">${escapeHtml(l)}</p>`),
    `<ul style="padding-left:16px">${p.alarms.map(alarmHtml).join('')}</ul>`,
    p.dashboardUrl === null ? '' : dashboardHtml(p.dashboardUrl),
    `<p style="color:#666;font-size:12px">${footer(p).map(escapeHtml).join('<br>')}</p>`,
    '</body></html>',
  ]
  return parts.join('\n')
}

/** The e-mail of a payload: a subject tagged with the highest severity, a text and an HTML body. */
export function renderEmail(p: NotificationPayload): RenderedEmail {
  return { key: p.key, subject: subjectOf(p), text: textBody(p), html: htmlBody(p) }
}
