/**
 * Alarms as the API answers and takes them (`/alarms…`, docs/api.md): part of the contract in
 * schemas.ts. The names of states, severities, kinds and actions are src/alarms' own, repeated
 * here so that the browser build can import this file without the server's modules;
 * routes/alarms.ts fails to compile if the two lists differ.
 */
import { type Static, Type } from 'typebox'
import { DateTime, Nullable, Query, StationName, StationParam, TIME, TimeParam } from './schemas-common.ts'

export const ALARM_STATE_NAMES = ['NORMAL', 'UNACK', 'ACKED', 'RTNUN', 'SHELVED', 'OUT_OF_SERVICE'] as const
export const SEVERITY_NAMES = ['critical', 'high', 'medium', 'low'] as const
export const RULE_KIND_NAMES = ['spec', 'spc', 'stale', 'pipeline'] as const
export const ACTION_NAMES = [
  'acknowledge',
  'shelve',
  'unshelve',
  'out-of-service',
  'return-to-service',
] as const

/** `?state=` takes a state or one of these groups. */
export const STATE_GROUPS = {
  /** what ISA-18.2 annunciates: active (acknowledged or not) and returned unacknowledged */
  active: ['UNACK', 'ACKED', 'RTNUN'],
  unacknowledged: ['UNACK', 'RTNUN'],
  shelved: ['SHELVED'],
  all: [...ALARM_STATE_NAMES],
} as const

/** The longest shelve: an alarm shelved for longer is one nobody remembers to unshelve. */
export const MAX_SHELVE_MINUTES = 7 * 24 * 60
/** The longest silence or maintenance window. */
export const MAX_SILENCE_MINUTES = 30 * 24 * 60

const State = Type.Enum(ALARM_STATE_NAMES, { type: 'string' })
const Severity = Type.Enum(SEVERITY_NAMES, { type: 'string' })
const RuleId = Type.String({
  pattern: '^[A-Za-z0-9_.:-]{1,120}$',
  description: 'an alarm rule’s id (GET /alarms/rules)',
})
const MeasurementParam = Type.String({
  'x-catalog': 'measurement',
  description: 'a numeric measurement of the catalog',
})
const Subject = Type.String({
  maxLength: 200,
  description:
    'which of the rule’s alarms: the sensor, for a stale rule (GET /alarms lists them); default: the rule’s one alarm',
})

// ── Parameters ─────────────────────────────────────────────────────────────────────────────────

export const AlarmsQuery = Query({
  state: Type.Optional(
    Type.Array(Type.Enum([...Object.keys(STATE_GROUPS), ...ALARM_STATE_NAMES], { type: 'string' }), {
      minItems: 1,
      maxItems: 10,
      description:
        'states, or groups: `active` (UNACK, ACKED, RTNUN: what is annunciated), `unacknowledged` (UNACK, RTNUN), `shelved`, `all` (NORMAL too); repeat for several. Default: every alarm not NORMAL',
    }),
  ),
  station: Type.Optional(StationParam),
  severity: Type.Optional(Severity),
})

export const AlarmHistoryQuery = Query({
  station: Type.Optional(StationParam),
  rule: Type.Optional(RuleId),
  since: Type.Optional(TimeParam(`transitions at or after this: ${TIME}`)),
  until: Type.Optional(TimeParam(`transitions before this: ${TIME}`)),
  before_id: Type.Optional(
    Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'cursor: ids below this' }),
  ),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'transitions per page' }),
})

export const RulePath = Type.Object({ rule: RuleId })
export const RuleIdPath = Type.Object({ id: RuleId })
export const SilencePath = Type.Object({
  id: Type.String({ pattern: '^[A-Za-z0-9_.:-]{1,120}$', description: 'a silence’s id' }),
})

const comment = (required: boolean) =>
  Type.String({
    minLength: required ? 1 : 0,
    maxLength: 1000,
    description: required ? 'why (kept in the history)' : 'a note, kept in the history',
  })

/** acknowledge, unshelve, return-to-service */
export const ActionBody = Type.Object(
  { comment: Type.Optional(comment(false)), subject: Type.Optional(Subject) },
  { additionalProperties: false },
)
export const OutOfServiceBody = Type.Object(
  { comment: comment(true), subject: Type.Optional(Subject) },
  { additionalProperties: false },
)
export const ShelveBody = Type.Object(
  {
    comment: comment(true),
    until: Type.Optional(TimeParam(`the shelve’s end, at most 7 days ahead: ${TIME}`)),
    for_minutes: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_SHELVE_MINUTES, description: 'the shelve’s length' }),
    ),
    subject: Type.Optional(Subject),
  },
  {
    additionalProperties: false,
    description: 'a shelve ends: give `until` or `for_minutes` (one of them)',
  },
)

export const RuleBody = Type.Object(
  {
    kind: Type.Enum(RULE_KIND_NAMES, {
      type: 'string',
      description: 'spec (outside LSL/USL), spc (Western Electric rules), stale (a sensor silent), pipeline',
    }),
    station: Type.Optional({
      ...StationParam,
      description: 'the station (spec, spc, stale); none for a pipeline rule',
    }),
    measurement: Type.Optional({
      ...MeasurementParam,
      description: 'a numeric measurement of the station (spec, spc)',
    }),
    severity: Type.Optional(Severity),
    for_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 2_147_483_647,
        description: 'the pending period: how long the condition holds before the alarm is raised',
      }),
    ),
    deadband: Type.Optional(
      Type.Number({ minimum: 0, description: 'hysteresis, in the measurement’s unit (spec)' }),
    ),
    params: Type.Optional(
      Type.Record(Type.String(), Type.Unknown(), {
        description:
          'by kind: spec {clear_ms}; spc {we, subgroup, source, baseline, centre, sigma, clear_after}; stale {intervals, min_silent_ms}; pipeline {check, threshold} (docs/alarms.md)',
      }),
    ),
    enabled: Type.Optional(Type.Boolean()),
  },
  {
    additionalProperties: false,
    description:
      'a rule; checked against its kind and the catalog in force (a spec or SPC rule names a numeric measurement of its station), every problem named in the 400',
  },
)

export const SilencesQuery = Query({
  all: Type.Boolean({ default: false, description: 'also the silences that ended' }),
})

export const SilenceBody = Type.Object(
  {
    stations: Type.Optional(Type.Array(StationParam, { maxItems: 100 })),
    measurements: Type.Optional(Type.Array(MeasurementParam, { maxItems: 100 })),
    severities: Type.Optional(Type.Array(Severity, { maxItems: 4 })),
    rules: Type.Optional(Type.Array(RuleId, { maxItems: 100 })),
    starts_at: Type.Optional(TimeParam(`when it starts (default: now): ${TIME}`)),
    ends_at: Type.Optional(TimeParam(`when it ends, after its start: ${TIME}`)),
    duration_minutes: Type.Optional(
      Type.Integer({ minimum: 1, maximum: MAX_SILENCE_MINUTES, description: 'its length, from its start' }),
    ),
    comment: comment(true),
  },
  {
    additionalProperties: false,
    description:
      'notices matching every list given (an empty or missing list matches all) are recorded, not sent, between its start and end (`ends_at` or `duration_minutes`, at most 30 days after its start)',
  },
)

// ── Answers ────────────────────────────────────────────────────────────────────────────────────

export const Alarm = Type.Object({
  station: Nullable(StationName),
  measurement: Nullable(Type.String()),
  rule: Type.String({ description: 'the rule’s id' }),
  state: State,
  severity: Severity,
  kind: Type.Enum(RULE_KIND_NAMES, { type: 'string' }),
  subject: Type.String({ description: 'the sensor, for a stale rule; empty otherwise' }),
  active: Type.Boolean({ description: 'the rule’s condition holds now' }),
  value: Nullable(Type.Number({ description: 'the value that last changed the condition' })),
  since: DateTime('when it entered its state'),
  shelved_until: Nullable(DateTime()),
  notified_at: Nullable(DateTime('when people were last told of it')),
})
export type Alarm = Static<typeof Alarm>

export const AlarmTransition = Type.Object({
  id: Type.Integer(),
  at: DateTime(),
  rule: Type.String(),
  subject: Type.String(),
  station: Nullable(StationName),
  measurement: Nullable(Type.String()),
  kind: Type.Enum(RULE_KIND_NAMES, { type: 'string' }),
  severity: Severity,
  from: State,
  to: State,
  by: Nullable(Type.String({ description: 'who acted; null: the evaluator or the clock' })),
  comment: Nullable(Type.String()),
  value: Nullable(Type.Number()),
  reason: Type.String({ description: 'raised, cleared, acknowledged, shelved, shelve expired, …' }),
  notify: Type.Boolean({ description: 'people are told of it' }),
  silenced_by: Nullable(Type.String({ description: 'the silence that kept it from being sent' })),
})
export type AlarmTransition = Static<typeof AlarmTransition>

export const ActionResult = Type.Object({
  rule: Type.String(),
  subject: Type.String(),
  action: Type.Enum(ACTION_NAMES, { type: 'string' }),
  from: State,
  to: State,
  by: Type.String({ description: 'the credential that acted' }),
  comment: Type.String(),
  shelved_until: Nullable(DateTime()),
})

export const AlarmRule = Type.Object({
  id: Type.String(),
  kind: Type.Enum(RULE_KIND_NAMES, { type: 'string' }),
  station: Nullable(StationName),
  measurement: Nullable(Type.String()),
  severity: Severity,
  for_ms: Type.Integer(),
  deadband: Type.Number(),
  params: Type.Record(Type.String(), Type.Unknown()),
  enabled: Type.Boolean(),
  origin: Type.Enum(['catalog', 'operator'], {
    type: 'string',
    description: 'made from the catalog (disable it rather than delete it), or by an operator',
  }),
  updated_at: DateTime(),
  updated_by: Type.String(),
})
export type AlarmRule = Static<typeof AlarmRule>

export const Silence = Type.Object({
  id: Type.String(),
  stations: Type.Array(Type.String()),
  measurements: Type.Array(Type.String()),
  severities: Type.Array(Type.String()),
  rules: Type.Array(Type.String()),
  starts_at: DateTime(),
  ends_at: DateTime(),
  created_by: Type.String(),
  comment: Type.String(),
  created_at: DateTime(),
  expired_at: Nullable(DateTime('when it was ended early')),
})
export type Silence = Static<typeof Silence>

/** One Server-Sent Event of /sensor-data/stream about alarms. */
export const AlarmStreamEvent = Type.Object(
  {
    event: Type.Literal('alarm'),
    data: Type.String({
      contentMediaType: 'application/json',
      description: 'every alarm not NORMAL, as GET /alarms answers',
    }),
  },
  { description: 'after each change of an alarm or a rule (several changes within 250 ms: one event)' },
)

/** The alarms' part of /pipeline/status. */
/** The watchdog's view of the evaluation, whichever process leads it (`alarm_leader`, `alarm_offsets`). */
export const AlarmEvaluation = Type.Object(
  {
    evaluating: Type.Boolean({
      description: 'an evaluator ticked in the last 30 s (false also when none ever ran)',
    }),
    holder: Nullable(Type.String({ description: 'the leading process, host:pid' })),
    heartbeat_age_sec: Nullable(
      Type.Number({ description: 'seconds since the leader last ticked; null: never' }),
    ),
    behind: Type.Integer({ description: 'readings loaded by the ETL that no evaluator has evaluated yet' }),
  },
  { description: 'whether alarms are being evaluated at all (docs/alarms.md, the watchdog)' },
)

/** An evaluator that has not ticked for this long is not evaluating: /ready says degraded. */
export const EVALUATOR_STALE_SEC = 30

export const PipelineAlarms = Type.Object({
  counts: Type.Array(Type.Object({ state: State, severity: Severity, count: Type.Integer() }), {
    description: 'alarms per state and severity (NORMAL included)',
  }),
  deliveries: Type.Array(
    Type.Object({
      receiver: Type.String(),
      status: Type.String({ description: 'pending, sent or expired (given up)' }),
      messages: Type.Integer(),
      attempts: Type.Integer(),
      last_error: Nullable(Type.String()),
      oldest_pending: Nullable(DateTime()),
    }),
    { description: 'notification messages per receiver and status' },
  ),
  evaluation: AlarmEvaluation,
  evaluator: Nullable(
    Type.Object(
      {
        leader: Type.Boolean({ description: 'this process evaluates (one process leads)' }),
        evaluated: Type.Integer({ description: 'readings evaluated since start' }),
        transitions: Type.Integer(),
        errors: Type.Integer(),
        last_error: Nullable(Type.String()),
      },
      { description: 'the evaluator in this API process; null when it runs none (EVF_ALARM_EVALUATOR)' },
    ),
  ),
})
