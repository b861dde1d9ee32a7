import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import {
  ACTIONS,
  type Action,
  type ALARM_STATES,
  AlarmNotFound,
  type AlarmState,
  act,
  type RULE_KINDS,
  type SEVERITIES,
  STATE_MEANING,
} from '../../alarms/index.ts'
import { alarmHistory, alarmStateOf, listAlarms, type Pool, type RuleRow, ruleById } from '../../db/index.ts'
import { alarmJson, iso, NOT_NORMAL } from '../alarm-feed.ts'
import { actorOf } from '../auth.ts'
import { parseTime } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import {
  type ACTION_NAMES,
  ActionBody,
  ActionResult,
  type ALARM_STATE_NAMES,
  Alarm,
  AlarmHistoryQuery,
  AlarmsQuery,
  AlarmTransition,
  MAX_SHELVE_MINUTES,
  OutOfServiceBody,
  type RULE_KIND_NAMES,
  RulePath,
  type SEVERITY_NAMES,
  ShelveBody,
  STATE_GROUPS,
} from '../schemas-alarms.ts'
import type { Api } from '../types.ts'

type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false
type Assert<T extends true> = T
/** The contract's names (schemas-alarms.ts repeats them for the browser build) are src/alarms' own. */
export type NamesMatch = [
  Assert<Same<(typeof ALARM_STATES)[number], (typeof ALARM_STATE_NAMES)[number]>>,
  Assert<Same<(typeof SEVERITIES)[number], (typeof SEVERITY_NAMES)[number]>>,
  Assert<Same<(typeof RULE_KINDS)[number], (typeof RULE_KIND_NAMES)[number]>>,
  Assert<Same<Action, (typeof ACTION_NAMES)[number]>>,
]

/**
 * `/alarms`: the alarms and their history (scope `read`), and what operators do to them
 * (acknowledge, shelve, unshelve, out of service, return to service: scope `operate`). Rules and
 * silences are alarm-rules.ts.
 */
export function alarmRoutes(app: Api, pool: Pool): void {
  listRoute(app, pool)
  historyRoute(app, pool)
  actionRoutes(app, pool)
}

/** `?state=` as states: groups expanded, nothing given is every state but NORMAL, `all` is every one. */
function statesOf(asked: readonly string[] | undefined): readonly string[] | undefined {
  if (asked === undefined) return NOT_NORMAL
  if (asked.includes('all')) return undefined
  const groups: Record<string, readonly string[]> = STATE_GROUPS
  return [...new Set(asked.flatMap((s) => groups[s] ?? [s]))]
}

function listRoute(app: Api, pool: Pool): void {
  app.get(
    '/alarms',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'Alarms and their ISA-18.2 state, most severe and newest first (default: every one not NORMAL)',
        description:
          '`?state=active` is what is annunciated: UNACK (active, unacknowledged), ACKED (active, acknowledged) and RTNUN (returned to normal, unacknowledged).',
        tags: ['alarms'],
        querystring: AlarmsQuery,
        response: answers({ 200: Type.Array(Alarm) }),
      },
    },
    async (req) => {
      const { state, station, severity } = req.query
      const rows = await listAlarms(pool, statesOf(state))
      return rows
        .filter(
          (a) => (station === undefined || a.station === station) && (severity ?? a.severity) === a.severity,
        )
        .map(alarmJson)
    },
  )
}

function historyRoute(app: Api, pool: Pool): void {
  app.get(
    '/alarms/history',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Every transition of every alarm, newest first: who, when, the value, the rule, and why',
        description:
          'A full page carries a `Link: <…?before_id=N>; rel="next"` header to the next (older) page.',
        tags: ['alarms'],
        querystring: AlarmHistoryQuery,
        response: answers({ 200: Type.Array(AlarmTransition) }),
      },
    },
    async (req, reply) => {
      const q = req.query
      const rows = await alarmHistory(pool, {
        station: q.station,
        rule: q.rule,
        since: parseTime(q.since),
        until: parseTime(q.until),
        beforeId: q.before_id,
        limit: q.limit,
      })
      const last = rows[rows.length - 1]
      if (rows.length === q.limit && last) {
        const next = new URLSearchParams()
        for (const [k, v] of Object.entries(q))
          if (v !== undefined && k !== 'before_id') next.set(k, String(v))
        next.set('before_id', String(last.id))
        reply.header('link', `</alarms/history?${next}>; rel="next"`)
      }
      return rows.map((e) => ({
        id: Number(e.id),
        at: iso(e.at)!,
        rule: e.rule_id,
        subject: e.subject,
        station: e.station,
        measurement: e.measurement,
        kind: e.kind as AlarmTransition['kind'],
        severity: e.severity as AlarmTransition['severity'],
        from: e.from_state as AlarmState,
        to: e.to_state as AlarmState,
        by: e.by_whom,
        comment: e.comment,
        value: e.value,
        reason: e.reason,
        notify: e.notify,
        silenced_by: e.silenced_by,
      }))
    },
  )
}

interface ActionInput {
  comment?: string | undefined
  subject?: string | undefined
  until?: string | undefined
  for_minutes?: number | undefined
}

const SUMMARY: Record<Action, string> = {
  acknowledge: 'Acknowledge an alarm (UNACK → ACKED, RTNUN → NORMAL), with a comment',
  shelve: 'Shelve an alarm until an expiry (at most 7 days): it is not annunciated meanwhile',
  unshelve: 'Unshelve an alarm: back to UNACK if its condition holds, else NORMAL',
  'out-of-service': 'Take an alarm out of service (maintenance, a broken sensor), with why',
  'return-to-service': 'Return an alarm to service: NORMAL, then as its rule evaluates',
}

function actionRoutes(app: Api, pool: Pool): void {
  for (const action of ACTIONS) {
    const body =
      action === 'shelve' ? ShelveBody : action === 'out-of-service' ? OutOfServiceBody : ActionBody
    app.post(
      `/alarms/:rule/${action}`,
      {
        config: { scope: 'operate' },
        schema: {
          summary: SUMMARY[action],
          description:
            'Recorded in the history with who (the credential’s name), when and the comment. 404: no such rule, or no alarm of it for `subject`; 409: the action does nothing in the alarm’s state (the detail says which).',
          tags: ['alarms'],
          params: RulePath,
          body,
          response: answers({ 200: ActionResult }, { notFound: true, conflict: true }),
        },
      },
      async (req, reply) => perform(pool, action, req, reply, req.params.rule, req.body as ActionInput),
    )
  }
}

async function perform(
  pool: Pool,
  action: Action,
  req: FastifyRequest,
  reply: FastifyReply,
  ruleId: string,
  body: ActionInput,
) {
  const fail = (code: 'NOT_FOUND' | 'CONFLICT' | 'BAD_PARAMETER', detail: string) =>
    sendProblem(reply, problem(code, detail, { instance: req.url }))
  const rule = await ruleById(pool, ruleId)
  const subject = body.subject ?? ''
  const missing =
    rule === undefined
      ? `no alarm rule "${ruleId}" (GET /alarms/rules lists them)`
      : await noAlarm(pool, rule, subject)
  if (missing) return fail('NOT_FOUND', missing)
  let until: number | undefined
  if (action === 'shelve') {
    const expiry = shelveExpiry(body)
    if (typeof expiry === 'string') return fail('BAD_PARAMETER', expiry)
    until = expiry
  }
  const by = actorOf(req)
  const comment = body.comment ?? ''
  let moved: { from: AlarmState; to: AlarmState }
  try {
    moved = await act(pool, rule!, { rule: ruleId, subject, action, by, comment, until })
  } catch (error) {
    if (error instanceof AlarmNotFound) return fail('NOT_FOUND', error.message)
    throw error
  }
  const { from, to } = moved
  // Shelving a shelved alarm moves its expiry: something was done.
  if (from === to && !(action === 'shelve' && to === 'SHELVED'))
    return fail('CONFLICT', `the alarm is ${to} (${STATE_MEANING[to]}): ${action} does nothing in that state`)
  const shelvedUntil = to === 'SHELVED' && until !== undefined ? new Date(until).toISOString() : null
  return { rule: ruleId, subject, action, from, to, by, comment, shelved_until: shelvedUntil }
}

/** Why there is no alarm to act on, or undefined when there is (or it is the rule's one alarm, made now). */
async function noAlarm(pool: Pool, rule: RuleRow, subject: string): Promise<string | undefined> {
  if ((await alarmStateOf(pool, rule.id, subject)) !== undefined) return undefined
  if (subject === '' && rule.kind !== 'stale') return undefined
  return subject === ''
    ? `rule "${rule.id}" has an alarm per sensor: give \`subject\` (GET /alarms?state=all lists them)`
    : `rule "${rule.id}" has no alarm for subject "${subject}" (GET /alarms?state=all lists them)`
}

/** A shelve's end in ms, from `until` or `for_minutes`, or what is wrong with them. */
function shelveExpiry(body: ActionInput): number | string {
  const now = Date.now()
  const max = now + MAX_SHELVE_MINUTES * 60_000
  if ((body.until === undefined) === (body.for_minutes === undefined))
    return 'a shelve needs an expiry: give `until` (a time at most 7 days ahead) or `for_minutes` (1–10080), one of them'
  if (body.for_minutes !== undefined) return now + body.for_minutes * 60_000
  const until = parseTime(body.until)!.getTime()
  if (until <= now) return `until: ${body.until} is not in the future`
  if (until > max)
    return `until: ${body.until} is more than 7 days ahead (at most ${new Date(max).toISOString()})`
  return until
}
