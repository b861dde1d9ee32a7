/**
 * The alarms' tables (migration 0010, docs/alarms.md): rules, each alarm's state, its history,
 * and the evaluator's cursor and fence. The outbox and silences are in alarm-outbox.ts.
 */
import type pg from 'pg'
import type { Pool } from '../pool.ts'
import type { LoadedRange } from './loaded.ts'

/** Transitions and rule changes are announced on this channel (the API's SSE, the evaluator's rules). */
export const ALARMS_CHANNEL = 'evf_alarms'

export interface RuleRow {
  id: string
  kind: 'spec' | 'spc' | 'stale' | 'pipeline'
  station: string | null
  measurement: string | null
  severity: 'critical' | 'high' | 'medium' | 'low'
  for_ms: number
  deadband: number
  params: Record<string, unknown>
  enabled: boolean
  origin: 'catalog' | 'operator'
  updated_at: Date
  updated_by: string
}

export type NewRule = Omit<RuleRow, 'updated_at' | 'updated_by' | 'origin'> & { origin?: RuleRow['origin'] }

export async function listRules(db: Pool | pg.ClientBase): Promise<RuleRow[]> {
  const { rows } = await db.query<RuleRow>(
    'SELECT * FROM alarm_rules ORDER BY kind, station NULLS FIRST, measurement, id',
  )
  return rows
}

const RULE_COLUMNS = [
  'id',
  'kind',
  'station',
  'measurement',
  'severity',
  'for_ms',
  'deadband',
  'params',
  'enabled',
  'origin',
]
const ruleValues = (r: NewRule) => [
  r.id,
  r.kind,
  r.station,
  r.measurement,
  r.severity,
  r.for_ms,
  r.deadband,
  JSON.stringify(r.params),
  r.enabled,
  r.origin ?? 'operator',
]

/** Adds the rules that are not there yet (by id): the catalog's defaults never overwrite an operator's edit. */
export async function seedRules(db: Pool | pg.ClientBase, rules: readonly NewRule[]): Promise<number> {
  if (rules.length === 0) return 0
  const { rowCount } = await db.query(
    `INSERT INTO alarm_rules (${RULE_COLUMNS.join(', ')})
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS r(id text, kind text, station text, measurement text,
       severity text, for_ms integer, deadband double precision, params jsonb, enabled boolean, origin text)
     ON CONFLICT (id) DO NOTHING`,
    [JSON.stringify(rules.map((r) => ({ ...r, origin: r.origin ?? 'catalog' })))],
  )
  return rowCount ?? 0
}

/** Creates or replaces a rule as `by` did; announces the change. */
export async function putRule(db: Pool | pg.ClientBase, rule: NewRule, by: string): Promise<RuleRow> {
  const { rows } = await db.query<RuleRow>(
    `INSERT INTO alarm_rules (${RULE_COLUMNS.join(', ')}, updated_by)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11)
     ON CONFLICT (id) DO UPDATE SET kind = EXCLUDED.kind, station = EXCLUDED.station,
       measurement = EXCLUDED.measurement, severity = EXCLUDED.severity, for_ms = EXCLUDED.for_ms,
       deadband = EXCLUDED.deadband, params = EXCLUDED.params, enabled = EXCLUDED.enabled,
       updated_at = now(), updated_by = EXCLUDED.updated_by
     RETURNING *`,
    [...ruleValues(rule), by],
  )
  await db.query(`SELECT pg_notify('${ALARMS_CHANNEL}', $1)`, [JSON.stringify({ rules: true })])
  return rows[0]!
}

export async function deleteRule(db: Pool | pg.ClientBase, id: string): Promise<boolean> {
  const { rowCount } = await db.query('DELETE FROM alarm_rules WHERE id = $1', [id])
  await db.query(`SELECT pg_notify('${ALARMS_CHANNEL}', $1)`, [JSON.stringify({ rules: true })])
  return (rowCount ?? 0) > 0
}

/** An alarm's row: its lifecycle (times in ms) and the evaluator's state. */
export interface AlarmRow {
  rule_id: string
  subject: string
  station: string | null
  measurement: string | null
  state: string
  active: boolean
  pending_since: number | null
  shelved_until: number | null
  value: number | null
  eval: Record<string, unknown>
  changed_at: number
  notified_at: number | null
}

const ALARM_SELECT = `SELECT rule_id, subject, station, measurement, state, active,
  (extract(epoch FROM pending_since) * 1000)::float8 AS pending_since,
  (extract(epoch FROM shelved_until) * 1000)::float8 AS shelved_until, value, eval,
  (extract(epoch FROM changed_at) * 1000)::float8 AS changed_at,
  (extract(epoch FROM notified_at) * 1000)::float8 AS notified_at
FROM alarms`

export async function loadAlarms(db: Pool | pg.ClientBase): Promise<AlarmRow[]> {
  const { rows } = await db.query<AlarmRow>(ALARM_SELECT)
  return rows
}

/** Locks the alarms of `keys` (creating the missing rows) and answers them, in key order. */
export async function lockAlarms(
  client: pg.ClientBase,
  keys: readonly { rule_id: string; subject: string; station: string | null; measurement: string | null }[],
): Promise<AlarmRow[]> {
  const sorted = [...keys].sort((a, b) => (a.rule_id + a.subject < b.rule_id + b.subject ? -1 : 1))
  await client.query(
    `INSERT INTO alarms (rule_id, subject, station, measurement)
     SELECT * FROM jsonb_to_recordset($1::jsonb) AS k(rule_id text, subject text, station text, measurement text)
     WHERE EXISTS (SELECT 1 FROM alarm_rules r WHERE r.id = k.rule_id)
     ON CONFLICT DO NOTHING`,
    [JSON.stringify(sorted)],
  )
  const { rows } = await client.query<AlarmRow>(
    `${ALARM_SELECT} WHERE (rule_id, subject) IN (SELECT * FROM unnest($1::text[], $2::text[]))
     ORDER BY rule_id, subject FOR UPDATE`,
    [sorted.map((k) => k.rule_id), sorted.map((k) => k.subject)],
  )
  return rows
}

/** An alarm's lifecycle to write (times in ms), with the evaluator's state. */
export interface AlarmWrite {
  rule_id: string
  subject: string
  state: string
  active: boolean
  pendingSince: number | null
  shelvedUntil: number | null
  value: number | null
  eval: unknown
  /** the state changed: `changed_at` moves */
  changed: boolean
}

/** Writes alarms' lifecycles (rows locked by `lockAlarms`). */
export async function writeAlarms(client: pg.ClientBase, alarms: readonly AlarmWrite[]): Promise<void> {
  if (alarms.length === 0) return
  await client.query(
    `UPDATE alarms a SET state = u.state, active = u.active,
       pending_since = to_timestamp(u.pending_since / 1000.0), shelved_until = to_timestamp(u.shelved_until / 1000.0),
       value = u.value, eval = u.eval, changed_at = CASE WHEN u.changed THEN now() ELSE a.changed_at END
     FROM jsonb_to_recordset($1::jsonb) AS u(rule_id text, subject text, state text, active boolean,
       pending_since float8, shelved_until float8, value float8, eval jsonb, changed boolean)
     WHERE a.rule_id = u.rule_id AND a.subject = u.subject`,
    [
      JSON.stringify(
        alarms.map((a) => ({
          rule_id: a.rule_id,
          subject: a.subject,
          state: a.state,
          active: a.active,
          pending_since: a.pendingSince,
          shelved_until: a.shelvedUntil,
          value: a.value,
          eval: a.eval,
          changed: a.changed,
        })),
      ),
    ],
  )
}

/** Saves the evaluator's state of alarms whose lifecycle did not change (no lock needed: only the leader writes it). */
export async function saveEval(
  client: pg.ClientBase,
  states: readonly {
    rule_id: string
    subject: string
    station: string | null
    measurement: string | null
    eval: unknown
  }[],
): Promise<void> {
  if (states.length === 0) return
  await client.query(
    `INSERT INTO alarms (rule_id, subject, station, measurement, eval)
     SELECT k.rule_id, k.subject, k.station, k.measurement, k.eval
     FROM jsonb_to_recordset($1::jsonb) AS k(rule_id text, subject text, station text, measurement text, eval jsonb)
     WHERE EXISTS (SELECT 1 FROM alarm_rules r WHERE r.id = k.rule_id)
     ON CONFLICT (rule_id, subject) DO UPDATE SET eval = EXCLUDED.eval`,
    [JSON.stringify(states)],
  )
}

/** A transition as the history keeps it. */
export interface AlarmEventRow {
  id: number
  rule_id: string
  subject: string
  station: string | null
  measurement: string | null
  kind: string
  severity: string
  from_state: string
  to_state: string
  at: string
  by_whom: string | null
  comment: string | null
  value: number | null
  reason: string
  notify: boolean
  routed_at: string | null
  silenced_by: string | null
}

export type NewAlarmEvent = Omit<AlarmEventRow, 'id' | 'at' | 'routed_at' | 'silenced_by'> & { at: number }

/** Appends transitions to the history and announces them; answers their ids in order. */
export async function insertEvents(
  client: pg.ClientBase,
  events: readonly NewAlarmEvent[],
): Promise<number[]> {
  if (events.length === 0) return []
  const { rows } = await client.query<{ id: number }>(
    `INSERT INTO alarm_events (rule_id, subject, station, measurement, kind, severity, from_state, to_state, at,
       by_whom, comment, value, reason, notify)
     SELECT rule_id, subject, station, measurement, kind, severity, from_state, to_state, to_timestamp(at / 1000.0),
       by_whom, comment, value, reason, notify
     FROM jsonb_to_recordset($1::jsonb) AS e(rule_id text, subject text, station text,
       measurement text, kind text, severity text, from_state text, to_state text, at float8, by_whom text,
       comment text, value float8, reason text, notify boolean, n integer)
     ORDER BY n RETURNING id`,
    [JSON.stringify(events.map((e, n) => ({ ...e, n })))],
  )
  const ids = rows.map((r) => r.id)
  await client.query(`SELECT pg_notify('${ALARMS_CHANNEL}', $1)`, [JSON.stringify({ events: ids.length })])
  return ids
}

export interface HistoryFilter {
  station?: string | undefined
  rule?: string | undefined
  since?: Date | undefined
  until?: Date | undefined
  beforeId?: number | undefined
  limit: number
}

/** The history, newest first. */
export async function alarmHistory(pool: Pool, f: HistoryFilter): Promise<AlarmEventRow[]> {
  const { rows } = await pool.query<AlarmEventRow>(
    `SELECT id, rule_id, subject, station, measurement, kind, severity, from_state, to_state, at, by_whom, comment,
            value, reason, notify, routed_at, silenced_by
     FROM alarm_events
     WHERE ($1::text IS NULL OR station = $1) AND ($2::text IS NULL OR rule_id = $2)
       AND ($3::timestamptz IS NULL OR at >= $3) AND ($4::timestamptz IS NULL OR at < $4)
       AND ($5::bigint IS NULL OR id < $5)
     ORDER BY id DESC LIMIT $6`,
    [f.station ?? null, f.rule ?? null, f.since ?? null, f.until ?? null, f.beforeId ?? null, f.limit],
  )
  return rows
}

/** Alarms with their rule, for the API: those not NORMAL (or all), most severe and newest first. */
export interface AlarmView {
  rule: string
  kind: string
  subject: string
  station: string | null
  measurement: string | null
  severity: string
  state: string
  active: boolean
  value: number | null
  since: string
  shelved_until: string | null
  notified_at: string | null
}

export async function listAlarms(pool: Pool, states: readonly string[] | undefined): Promise<AlarmView[]> {
  const { rows } = await pool.query<AlarmView>(
    `SELECT a.rule_id AS rule, r.kind, a.subject, coalesce(a.station, r.station) AS station,
            coalesce(a.measurement, r.measurement) AS measurement, r.severity, a.state, a.active, a.value,
            a.changed_at AS since, a.shelved_until, a.notified_at
     FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id
     WHERE ($1::text[] IS NULL OR a.state = ANY($1))
     ORDER BY array_position(ARRAY['critical', 'high', 'medium', 'low'], r.severity), a.changed_at DESC`,
    [states ?? null],
  )
  return rows
}

/** The evaluator's cursor: the next offset it reads, per partition. */
export async function alarmCursor(db: Pool | pg.ClientBase): Promise<Map<string, bigint>> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    'SELECT topic, partition, next_offset::text FROM alarm_offsets',
  )
  return new Map(rows.map((r) => [`${r.topic}:${r.partition}`, BigInt(r.next_offset)]))
}

export async function saveCursor(client: pg.ClientBase, cursor: ReadonlyMap<string, bigint>): Promise<void> {
  if (cursor.size === 0) return
  const entries = [...cursor].map(([k, v]) => {
    const at = k.lastIndexOf(':')
    return { topic: k.slice(0, at), partition: Number(k.slice(at + 1)), next_offset: String(v) }
  })
  await client.query(
    `INSERT INTO alarm_offsets (topic, partition, next_offset)
     SELECT topic, partition, next_offset::bigint FROM jsonb_to_recordset($1::jsonb)
       AS c(topic text, partition integer, next_offset text)
     ON CONFLICT (topic, partition) DO UPDATE SET next_offset = greatest(alarm_offsets.next_offset, EXCLUDED.next_offset)`,
    [JSON.stringify(entries)],
  )
}

/** Where the ETL stands on every partition (the end of what the evaluator can read). */
export async function loadedPositions(db: Pool | pg.ClientBase): Promise<LoadedRange[]> {
  const { rows } = await db.query<{ topic: string; partition: number; next_offset: string }>(
    'SELECT topic, partition, next_offset::text FROM etl_offsets',
  )
  return rows.map((r) => ({ topic: r.topic, partition: r.partition, from: 0n, to: BigInt(r.next_offset) }))
}

/** A loaded reading as the evaluator reads it. */
export interface EvalReading {
  station: string
  /** reading time, ms */
  at: number
  /** a JSON object of the fields asked for (`readingsForAlarms`), null if none of its station */
  data: string | null
  /** which of the ranges asked for it came from (their order: by topic, then partition) */
  range: number
  offset: string
}

/**
 * The rows loaded from `ranges`, in partition and offset order, each with only the fields of
 * `fields` (per station: the names its rules read). Each range is read by its own index scan:
 * `OFFSET 0` keeps the lateral subquery from being flattened into a join, which the planner, not
 * knowing how narrow a range is, turned into a hash join over a sequential scan of the day's
 * partition once it held a few hundred thousand rows (at 10,000 readings/s PostgreSQL's CPU grew
 * to 0.9 cores within 5 minutes). The scans give each range's rows in offset order already:
 * sorting here instead of in PostgreSQL (where a drain of 9,000 rows spent a third of the query in
 * the sort, and more once it spilled past `work_mem`) costs a pass that finds them in order.
 * Only the fields asked for are printed: the whole document's text was a quarter of the query's
 * time in PostgreSQL and three times the bytes the evaluator then parsed.
 */
export async function readingsForAlarms(
  db: Pool,
  ranges: readonly LoadedRange[],
  fields: ReadonlyMap<string, readonly string[]>,
): Promise<EvalReading[]> {
  if (ranges.length === 0) return []
  const sorted = [...ranges].sort((a, b) =>
    a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition,
  )
  const { sql, params } = projection(fields, 5)
  const { rows } = await db.query<EvalReading>(
    `SELECT x.* FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[])
       WITH ORDINALITY AS r(topic, partition, lo, hi, i)
     CROSS JOIN LATERAL (
       SELECT s.station, (extract(epoch FROM s.reading_time) * 1000)::float8 AS at, ${sql} AS data,
              r.i::int AS range, s.source_offset::text AS offset
       FROM sensor_data s
       WHERE s.source_topic = r.topic AND s.source_partition = r.partition
         AND s.source_offset >= r.lo AND s.source_offset < r.hi
       OFFSET 0) x`,
    [
      sorted.map((r) => r.topic),
      sorted.map((r) => r.partition),
      sorted.map((r) => String(r.from)),
      sorted.map((r) => String(r.to)),
      ...params,
    ],
  )
  return inSourceOrder(rows)
}

/**
 * `s.data` cut down to the fields of its station in `fields`, as JSON text: a `CASE` on the
 * station, each arm a `json_build_object` of its names (bound as parameters from `$first`).
 */
export function projection(
  fields: ReadonlyMap<string, readonly string[]>,
  first: number,
): { sql: string; params: string[] } {
  const params: string[] = []
  const bind = (v: string) => {
    params.push(v)
    return `$${first + params.length - 1}::text`
  }
  const arms: string[] = []
  for (const [station, names] of fields) {
    if (names.length === 0) continue
    const pairs = names.map((n) => {
      const p = bind(n)
      return `${p}, s.data -> ${p}`
    })
    arms.push(`WHEN ${bind(station)} THEN json_build_object(${pairs.join(', ')})::text`)
  }
  return { sql: arms.length ? `CASE s.station ${arms.join(' ')} END` : 'NULL::text', params }
}

/** Offsets as decimal text: a shorter one is smaller. */
const compareOffsets = (a: string, b: string): number => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0)

const compareSource = (a: EvalReading, b: EvalReading): number =>
  a.range - b.range || compareOffsets(a.offset, b.offset)

/** `rows` by range (topic, partition) and offset; sorted only if they are not in that order already. */
export function inSourceOrder(rows: EvalReading[]): EvalReading[] {
  for (let i = 1; i < rows.length; i++)
    if (compareSource(rows[i - 1]!, rows[i]!) > 0) return rows.sort(compareSource)
  return rows
}

/**
 * Takes the lead on `client` (a connection held for as long as the lead): a session advisory lock,
 * then a new epoch. Answers the epoch, or undefined while another process leads.
 */
export async function takeLead(client: pg.ClientBase, holder: string): Promise<number | undefined> {
  const { rows } = await client.query<{ got: boolean }>(
    "SELECT pg_try_advisory_lock(hashtext('evf_alarms_leader')) AS got",
  )
  if (!rows[0]?.got) return undefined
  const { rows: epoch } = await client.query<{ epoch: number }>(
    'UPDATE alarm_leader SET epoch = epoch + 1, holder = $1, since = now() RETURNING epoch',
    [holder],
  )
  return epoch[0]!.epoch
}

/** Inside a transaction: fails unless `epoch` is still the leader's (a deposed leader cannot write). */
export async function checkLead(client: pg.ClientBase, epoch: number): Promise<void> {
  const { rows } = await client.query<{ epoch: number }>('SELECT epoch FROM alarm_leader FOR SHARE')
  if (rows[0]?.epoch !== epoch)
    throw new Error(`no longer the alarm evaluator's leader (epoch ${epoch} replaced)`)
}

/** Alarms whose pending period or shelve may have run out by now (the clock's work). */
export async function alarmsDue(
  db: Pool | pg.ClientBase,
  forMs: ReadonlyMap<string, number>,
): Promise<AlarmRow[]> {
  const { rows } = await db.query<AlarmRow>(
    `${ALARM_SELECT} WHERE (state = 'NORMAL' AND active AND pending_since IS NOT NULL)
       OR (state = 'SHELVED' AND shelved_until <= now())`,
  )
  const now = Date.now()
  return rows.filter(
    (a) =>
      a.state === 'SHELVED' ||
      (a.pending_since !== null && now - a.pending_since >= (forMs.get(a.rule_id) ?? 0)),
  )
}

/** Dead letters written in the last minute (the dead-letter-rate rule). */
export async function deadLettersLastMinute(db: Pool | pg.ClientBase): Promise<number> {
  const { rows } = await db.query<{ n: number }>(
    "SELECT count(*)::int AS n FROM dead_letters WHERE created_at > now() - interval '1 minute'",
  )
  return rows[0]!.n
}

/** The leader's tick: proves an evaluator runs (and still leads). */
export async function heartbeat(db: Pool | pg.ClientBase, epoch: number): Promise<void> {
  await db.query('UPDATE alarm_leader SET heartbeat_at = now() WHERE epoch = $1', [epoch])
}

/** Whether alarms are being evaluated: who leads, how long since its last tick, how far behind the ETL. */
export interface AlarmHealth {
  holder: string | null
  /** seconds since the leader's last tick; null when no evaluator ever ran */
  heartbeat_age_sec: number | null
  /** readings the ETL loaded that the evaluator has not evaluated */
  behind: number
}

export async function alarmHealth(db: Pool | pg.ClientBase): Promise<AlarmHealth> {
  const { rows } = await db.query<AlarmHealth>(
    `SELECT l.holder, extract(epoch FROM now() - l.heartbeat_at)::float8 AS heartbeat_age_sec,
            (SELECT coalesce(sum(greatest(e.next_offset - coalesce(a.next_offset, e.next_offset), 0)), 0)::float8
             FROM etl_offsets e LEFT JOIN alarm_offsets a USING (topic, partition)) AS behind
     FROM alarm_leader l`,
  )
  return rows[0] ?? { holder: null, heartbeat_age_sec: null, behind: 0 }
}
