/**
 * What operators do to an alarm (docs/alarms.md): acknowledge, shelve until an expiry, unshelve,
 * take out of and return to service, each with who and a comment, kept in the history. Used by the
 * API and the CLI; the row lock makes an action and the evaluator's next step take turns.
 */
import { insertEvents, inTransaction, lockAlarms, type Pool, type RuleRow, writeAlarms } from '../db/index.ts'
import { type AlarmEvent, type AlarmState, historyEvent, step } from './lifecycle.ts'

export const ACTIONS = ['acknowledge', 'shelve', 'unshelve', 'out-of-service', 'return-to-service'] as const
export type Action = (typeof ACTIONS)[number]

export interface ActionRequest {
  rule: string
  subject?: string | undefined
  action: Action
  by: string
  comment: string
  /** shelve: until when (ms) */
  until?: number | undefined
}

export class AlarmNotFound extends Error {}

/** Applies the action; answers the alarm's state before and after (equal: nothing to do in that state). */
export async function act(
  pool: Pool,
  rule: RuleRow,
  req: ActionRequest,
): Promise<{ from: AlarmState; to: AlarmState }> {
  const at = Date.now()
  const event: AlarmEvent =
    req.action === 'shelve'
      ? { kind: 'shelve', by: req.by, comment: req.comment, until: req.until ?? at + 3_600_000, at }
      : { kind: req.action, by: req.by, comment: req.comment, at }
  return inTransaction(pool, async (client) => {
    const subject = req.subject ?? ''
    const [row] = await lockAlarms(client, [
      { rule_id: rule.id, subject, station: rule.station, measurement: rule.measurement },
    ])
    if (!row) throw new AlarmNotFound(`no alarm ${rule.id}${subject ? ` for ${subject}` : ''}`)
    const before = row.state as AlarmState
    const s = step(
      {
        state: before,
        active: row.active,
        pendingSince: row.pending_since,
        shelvedUntil: row.shelved_until,
        value: row.value,
      },
      event,
      rule.for_ms,
    )
    await writeAlarms(client, [
      { rule_id: rule.id, subject, ...s.alarm, eval: row.eval, changed: s.alarm.state !== before },
    ])
    await insertEvents(
      client,
      s.transitions.map((t) => historyEvent({ rule, alarm: { ...row, subject } }, t)),
    )
    return { from: before, to: s.alarm.state }
  })
}
