/**
 * The alarms as the API shows and acts on them (docs/api.md): one rule, one alarm's state, and the
 * counts by state and severity that `/metrics` and `/pipeline/status` report. The tables are
 * migration 0010's; the evaluator's statements are alarms.ts.
 */
import type { Pool } from '../pool.ts'
import type { RuleRow } from './alarms.ts'

export async function ruleById(pool: Pool, id: string): Promise<RuleRow | undefined> {
  const { rows } = await pool.query<RuleRow>('SELECT * FROM alarm_rules WHERE id = $1', [id])
  return rows[0]
}

/** The state of one alarm, or undefined when it has no row (never evaluated, or no such subject). */
export async function alarmStateOf(pool: Pool, rule: string, subject: string): Promise<string | undefined> {
  const { rows } = await pool.query<{ state: string }>(
    'SELECT state FROM alarms WHERE rule_id = $1 AND subject = $2',
    [rule, subject],
  )
  return rows[0]?.state
}

/** Alarms per state and severity (NORMAL included), for gauges and the pipeline's status. */
export interface AlarmCount {
  state: string
  severity: string
  n: number
}

export async function alarmCounts(pool: Pool): Promise<AlarmCount[]> {
  const { rows } = await pool.query<AlarmCount>(
    `SELECT a.state, r.severity, count(*)::int AS n
     FROM alarms a JOIN alarm_rules r ON r.id = a.rule_id
     GROUP BY a.state, r.severity ORDER BY a.state, r.severity`,
  )
  return rows
}
