import { randomUUID } from 'node:crypto'
import { Type } from 'typebox'
import { checkRule, RuleError } from '../../alarms/index.ts'
import {
  addSilence,
  deleteRule,
  expireSilence,
  listRules,
  listSilences,
  type NewRule,
  type Pool,
  putRule,
  type RuleRow,
  ruleById,
  type SilenceRow,
} from '../../db/index.ts'
import { iso } from '../alarm-feed.ts'
import { actorOf } from '../auth.ts'
import type { LiveCatalog } from '../catalog.ts'
import { parseTime } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import {
  AlarmRule,
  MAX_SILENCE_MINUTES,
  RuleBody,
  RuleIdPath,
  Silence,
  SilenceBody,
  SilencePath,
  SilencesQuery,
} from '../schemas-alarms.ts'
import type { Api } from '../types.ts'

/**
 * `/alarms/rules` (read with `read`, changed with `admin`) and `/alarms/silences` (read with
 * `read`, made and ended with `operate`): what raises alarms, and what keeps them from being sent.
 */
export function alarmRuleRoutes(app: Api, pool: Pool, live: LiveCatalog): void {
  ruleRoutes(app, pool, live)
  silenceRoutes(app, pool)
}

const ruleJson = (r: RuleRow): AlarmRule => ({
  id: r.id,
  kind: r.kind,
  station: r.station,
  measurement: r.measurement,
  severity: r.severity,
  for_ms: r.for_ms,
  deadband: r.deadband,
  params: r.params,
  enabled: r.enabled,
  origin: r.origin,
  updated_at: iso(r.updated_at)!,
  updated_by: r.updated_by,
})

function ruleRoutes(app: Api, pool: Pool, live: LiveCatalog): void {
  app.get(
    '/alarms/rules',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'The alarm rules: spec limits, Western Electric rules, silent sensors, the pipeline’s health',
        tags: ['alarms'],
        response: answers({ 200: Type.Array(AlarmRule) }),
      },
    },
    async () => (await listRules(pool)).map(ruleJson),
  )

  app.put(
    '/alarms/rules/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Create or replace an alarm rule',
        description:
          'Checked against its kind and the catalog in force; a 400 names every problem. A rule made from the catalog stays one when edited. The evaluator follows the change at once.',
        tags: ['alarms'],
        params: RuleIdPath,
        body: RuleBody,
        response: answers({ 200: AlarmRule, 201: AlarmRule }),
      },
    },
    async (req, reply) => {
      let rule: NewRule
      try {
        rule = checkRule({ ...req.body, id: req.params.id }, live.catalog)
      } catch (error) {
        if (!(error instanceof RuleError)) throw error
        return sendProblem(reply, problem('BAD_PARAMETER', error.message, { instance: req.url }))
      }
      const existed = (await ruleById(pool, rule.id)) !== undefined
      const row = await putRule(pool, rule, actorOf(req))
      return reply.code(existed ? 200 : 201).send(ruleJson(row))
    },
  )

  app.delete(
    '/alarms/rules/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Delete an alarm rule made by an operator, with its alarms (their history stays)',
        description:
          'A rule made from the catalog would come back at the next start: 409, disable it instead (PUT with `"enabled": false`).',
        tags: ['alarms'],
        params: RuleIdPath,
        response: answers(
          { 204: { description: 'deleted', type: 'null' } },
          { notFound: true, conflict: true },
        ),
      },
    },
    async (req, reply) => {
      const { id } = req.params
      const rule = await ruleById(pool, id)
      if (rule?.origin === 'catalog') {
        const detail = `rule "${id}" is made from the catalog and would come back: disable it instead (PUT with "enabled": false)`
        return sendProblem(reply, problem('CONFLICT', detail, { instance: req.url }))
      }
      if (!rule || !(await deleteRule(pool, id)))
        return sendProblem(reply, problem('NOT_FOUND', `no alarm rule "${id}"`, { instance: req.url }))
      return reply.code(204).send()
    },
  )
}

const silenceJson = (s: SilenceRow): Silence => ({
  id: s.id,
  stations: s.stations,
  measurements: s.measurements,
  severities: s.severities,
  rules: s.rules,
  starts_at: iso(s.starts_at)!,
  ends_at: iso(s.ends_at)!,
  created_by: s.created_by,
  comment: s.comment,
  created_at: iso(s.created_at)!,
  expired_at: iso(s.expired_at),
})

/** A silence's window in ms, or what is wrong with it. */
function windowOf(b: {
  starts_at?: string | undefined
  ends_at?: string | undefined
  duration_minutes?: number | undefined
}): { start: number; end: number } | string {
  const now = Date.now()
  const start = parseTime(b.starts_at)?.getTime() ?? now
  if ((b.ends_at === undefined) === (b.duration_minutes === undefined))
    return 'a silence needs an end: give `ends_at` or `duration_minutes`, one of them'
  const end = parseTime(b.ends_at)?.getTime() ?? start + b.duration_minutes! * 60_000
  if (end <= start) return `ends_at: ${b.ends_at} is not after the silence's start`
  if (end <= now) return `ends_at: ${b.ends_at} is past: the silence would silence nothing`
  if (end - start > MAX_SILENCE_MINUTES * 60_000) return 'a silence lasts at most 30 days'
  return { start, end }
}

function silenceRoutes(app: Api, pool: Pool): void {
  app.get(
    '/alarms/silences',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Silences and maintenance windows in force or to come (`all`: also those that ended)',
        tags: ['alarms'],
        querystring: SilencesQuery,
        response: answers({ 200: Type.Array(Silence) }),
      },
    },
    async (req) => (await listSilences(pool, req.query.all)).map(silenceJson),
  )

  app.post(
    '/alarms/silences',
    {
      config: { scope: 'operate' },
      schema: {
        summary: 'Silence notifications (now, or later: a maintenance window) until an end',
        description:
          'Matching transitions are still recorded in the history (with the silence’s id), not sent. An end is required (`ends_at` or `duration_minutes`), in the future and at most 30 days after the start.',
        tags: ['alarms'],
        body: SilenceBody,
        response: answers({ 201: Silence }),
      },
    },
    async (req, reply) => {
      const b = req.body
      const window = windowOf(b)
      if (typeof window === 'string')
        return sendProblem(reply, problem('BAD_PARAMETER', window, { instance: req.url }))
      const row = await addSilence(pool, {
        id: randomUUID(),
        stations: b.stations ?? [],
        measurements: b.measurements ?? [],
        severities: b.severities ?? [],
        rules: b.rules ?? [],
        starts_at: new Date(window.start),
        ends_at: new Date(window.end),
        created_by: actorOf(req),
        comment: b.comment,
      })
      return reply.code(201).send(silenceJson(row))
    },
  )

  app.delete(
    '/alarms/silences/:id',
    {
      config: { scope: 'operate' },
      schema: {
        summary: 'End a silence now (one to come is cancelled); it stays listed with `all`',
        tags: ['alarms'],
        params: SilencePath,
        response: answers({ 204: { description: 'ended', type: 'null' } }, { notFound: true }),
      },
    },
    async (req, reply) => {
      if (!(await expireSilence(pool, req.params.id))) {
        const detail = `no silence "${req.params.id}" in force or to come`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      return reply.code(204).send()
    },
  )
}
