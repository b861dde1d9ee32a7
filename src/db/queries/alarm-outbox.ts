/**
 * Telling people of alarms (migration 0010, docs/alarms.md): silences, the routing of transitions
 * into messages, and the outbox each message waits in until its receiver took it.
 */
import type pg from 'pg'
import type { Pool } from '../pool.ts'
import type { AlarmEventRow } from './alarms.ts'

export interface SilenceRow {
  id: string
  stations: string[]
  measurements: string[]
  severities: string[]
  rules: string[]
  starts_at: string
  ends_at: string
  created_by: string
  comment: string
  created_at: string
  expired_at: string | null
}

export type NewSilence = Pick<
  SilenceRow,
  'id' | 'stations' | 'measurements' | 'severities' | 'rules' | 'comment'
> & {
  starts_at: Date
  ends_at: Date
  created_by: string
}

export async function addSilence(pool: Pool, s: NewSilence): Promise<SilenceRow> {
  const { rows } = await pool.query<SilenceRow>(
    `INSERT INTO alarm_silences (id, stations, measurements, severities, rules, starts_at, ends_at, created_by, comment)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING *`,
    [
      s.id,
      s.stations,
      s.measurements,
      s.severities,
      s.rules,
      s.starts_at,
      s.ends_at,
      s.created_by,
      s.comment,
    ],
  )
  return rows[0]!
}

/** Ends a silence now; answers whether it was in force or still to come. */
export async function expireSilence(pool: Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE alarm_silences SET expired_at = now(), ends_at = greatest(starts_at + interval '1 millisecond', least(ends_at, now()))
     WHERE id = $1 AND expired_at IS NULL AND ends_at > now()`,
    [id],
  )
  return (rowCount ?? 0) > 0
}

/** Silences in force or to come (`all`: also those that ended). */
export async function listSilences(db: Pool | pg.ClientBase, all = false): Promise<SilenceRow[]> {
  const { rows } = await db.query<SilenceRow>(
    `SELECT * FROM alarm_silences ${all ? '' : 'WHERE ends_at > now()'} ORDER BY starts_at DESC, id`,
  )
  return rows
}

/** Transitions to tell people of that no message carries yet, oldest first. */
export async function unroutedEvents(client: pg.ClientBase, limit = 1000): Promise<AlarmEventRow[]> {
  const { rows } = await client.query<AlarmEventRow>(
    `SELECT * FROM alarm_events WHERE notify AND routed_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE`,
    [limit],
  )
  return rows
}

export async function markRouted(
  client: pg.ClientBase,
  routed: readonly { id: number; silenced_by: string | null }[],
): Promise<void> {
  if (routed.length === 0) return
  await client.query(
    `UPDATE alarm_events e SET routed_at = now(), silenced_by = r.silenced_by
     FROM unnest($1::bigint[], $2::text[]) AS r(id, silenced_by) WHERE e.id = r.id`,
    [routed.map((r) => r.id), routed.map((r) => r.silenced_by)],
  )
}

/** How many notices each receiver's messages carried since `since`, and when each last got a flood summary. */
export async function recentDeliveries(
  client: pg.ClientBase,
  since: Date,
): Promise<Map<string, { notices: number; lastSummary: number | null }>> {
  const { rows } = await client.query<{ receiver: string; notices: number; last_summary: number | null }>(
    `SELECT receiver, sum(notices) FILTER (WHERE kind = 'group')::int AS notices,
            (extract(epoch FROM max(created_at) FILTER (WHERE kind = 'flood-summary')) * 1000)::float8 AS last_summary
     FROM alarm_outbox WHERE created_at >= $1 GROUP BY receiver`,
    [since],
  )
  return new Map(rows.map((r) => [r.receiver, { notices: r.notices ?? 0, lastSummary: r.last_summary }]))
}

export interface NewOutboxMessage {
  key: string
  receiver: string
  kind: 'group' | 'flood-summary' | 'repeat'
  station: string | null
  notices: number
  payload: unknown
}

/** Queues messages; a key already queued is not queued again. */
export async function enqueue(client: pg.ClientBase, messages: readonly NewOutboxMessage[]): Promise<void> {
  if (messages.length === 0) return
  await client.query(
    `INSERT INTO alarm_outbox (key, receiver, kind, station, notices, payload)
     SELECT key, receiver, kind, station, notices, payload
     FROM jsonb_to_recordset($1::jsonb) AS m(key text, receiver text, kind text, station text, notices integer, payload jsonb)
     ON CONFLICT (key) DO NOTHING`,
    [JSON.stringify(messages)],
  )
}

export interface OutboxRow {
  id: number
  key: string
  receiver: string
  kind: NewOutboxMessage['kind']
  station: string | null
  payload: unknown
  attempts: number
  created_at: Date
}

/** Messages due for an attempt, oldest first. */
export async function dueMessages(pool: Pool, limit: number): Promise<OutboxRow[]> {
  const { rows } = await pool.query<OutboxRow>(
    `SELECT id, key, receiver, kind, station, payload, attempts, created_at FROM alarm_outbox
     WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY id LIMIT $1`,
    [limit],
  )
  return rows
}

export async function markSent(pool: Pool, id: number): Promise<void> {
  await pool.query(
    `UPDATE alarm_outbox SET status = 'sent', sent_at = now(), attempts = attempts + 1, last_error = NULL WHERE id = $1`,
    [id],
  )
}

/** Records a failed attempt: tried again after `retryInMs`, or given up on (`expired`). */
export async function markFailed(
  pool: Pool,
  id: number,
  error: string,
  retryInMs: number,
  expired: boolean,
): Promise<void> {
  await pool.query(
    `UPDATE alarm_outbox SET attempts = attempts + 1, last_error = $2,
       next_attempt_at = now() + $3 * interval '1 millisecond',
       status = CASE WHEN $4 THEN 'expired' ELSE status END
     WHERE id = $1`,
    [id, error.slice(0, 1000), retryInMs, expired],
  )
}

export interface RepeatDue {
  rule_id: string
  subject: string
  station: string | null
  measurement: string | null
  severity: string
  value: number | null
}

/** Alarms still unacknowledged whose people were last told longer than `repeatMs` ago. */
export async function alarmsToRepeat(client: pg.ClientBase, repeatMs: number): Promise<RepeatDue[]> {
  const { rows } = await client.query<RepeatDue>(
    `SELECT a.rule_id, a.subject, coalesce(a.station, r.station) AS station,
            coalesce(a.measurement, r.measurement) AS measurement, r.severity, a.value
     FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id
     WHERE a.state = 'UNACK' AND a.notified_at IS NOT NULL AND a.notified_at <= now() - $1 * interval '1 millisecond'
     FOR UPDATE OF a`,
    [repeatMs],
  )
  return rows
}

/** Notes that people were told of these alarms now (the repeat interval starts again). */
export async function markNotified(
  client: pg.ClientBase,
  alarms: readonly { rule_id: string; subject: string }[],
): Promise<void> {
  if (alarms.length === 0) return
  await client.query(
    `UPDATE alarms a SET notified_at = now() FROM unnest($1::text[], $2::text[]) AS k(rule_id, subject)
     WHERE a.rule_id = k.rule_id AND a.subject = k.subject`,
    [alarms.map((a) => a.rule_id), alarms.map((a) => a.subject)],
  )
}

/** Delivery counts per receiver and status, for /metrics and the dashboard. */
export interface DeliveryStats {
  receiver: string
  status: string
  messages: number
  attempts: number
  last_error: string | null
  oldest_pending: string | null
}

export async function deliveryStats(pool: Pool): Promise<DeliveryStats[]> {
  const { rows } = await pool.query<DeliveryStats>(
    `SELECT receiver, status, count(*)::int AS messages, sum(attempts)::int AS attempts,
            (array_agg(last_error ORDER BY id DESC) FILTER (WHERE last_error IS NOT NULL))[1] AS last_error,
            min(created_at) FILTER (WHERE status = 'pending') AS oldest_pending
     FROM alarm_outbox GROUP BY receiver, status ORDER BY receiver, status`,
  )
  return rows
}
