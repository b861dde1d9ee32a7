/**
 * The alarm evaluator (docs/alarms.md): one leader at a time (a PostgreSQL advisory lock, and an
 * epoch every write checks), fed by the ETL's commit notifications: each commit's rows are read
 * once, the rules' conditions updated, and the lifecycle of every alarm whose condition changed
 * moved on in one transaction with the history and the evaluator's own cursor and state. A restart
 * resumes from that cursor; a second process waits to take over.
 */
import { hostname } from 'node:os'
import pg from 'pg'
import type { Catalog } from '../catalog/index.ts'
import {
  ALARMS_CHANNEL,
  type AlarmRow,
  type AlarmWrite,
  alarmCursor,
  alarmsDue,
  checkLead,
  deadLettersLastMinute,
  decodeLoaded,
  etlHealth,
  heartbeat,
  insertEvents,
  inTransaction,
  kafkaNodes,
  LOADED_CHANNEL,
  type LoadedListener,
  type LoadedRange,
  listenChannel,
  listRules,
  loadAlarms,
  loadedPositions,
  lockAlarms,
  type NewAlarmEvent,
  type Pool,
  readingsForAlarms,
  saveCursor,
  saveEval,
  seedRules,
  takeLead,
  writeAlarms,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { sleep } from '../shared/time.ts'
import { type Change, Conditions, type CondState, condKey } from './conditions.ts'
import {
  type Alarm,
  type AlarmEvent,
  type AlarmState,
  historyEvent,
  step,
  type Transition,
} from './lifecycle.ts'
import type { Notifier } from './notifier.ts'
import { catalogRules, type Rule, ruleOf } from './rules.ts'

export interface EvaluatorOptions {
  pool: Pool
  log: Logger
  /** the catalog in force now (followed live by the caller) */
  catalog: () => Catalog
  /** seconds without progress that make the ETL stalled (EVF_ETL_STALL_SEC) */
  stallSec: number
  /** delivers what the evaluator raises; none: alarms are kept, nobody is told */
  notifier?: Notifier | undefined
  /** how often the clock runs (stale sensors, pending periods, shelves, routing), ms */
  tickMs?: number
  /** how often the pipeline rules are checked, ms */
  pipelineMs?: number
  /** how often a follower tries to take the lead, ms */
  followMs?: number
}

/** The most rows one evaluation reads (a long catch-up goes in steps). */
const MAX_ROWS = 50_000

/**
 * Evaluations start at most this often: under load, the ETL's commits of that time are evaluated
 * together, and the conditions' state and the cursor are written once for all of them (at
 * 35,000 readings/s, once instead of seven times a second: bench:soak).
 */
const EVALUATE_EVERY_MS = 250

export class AlarmEvaluator {
  private readonly closing = new AbortController()
  private loop: Promise<void> | undefined
  private epoch: number | undefined
  private conditions: Conditions | undefined
  private rules = new Map<string, Rule>()
  private cursor = new Map<string, bigint>()
  /** loaded ranges not yet evaluated, per partition */
  private readonly pending = new Map<string, LoadedRange>()
  private work: Promise<void> = Promise.resolve()
  private draining = false
  private drainTimer: NodeJS.Timeout | undefined
  private lastDrainAt = 0
  private lost: ((error: Error) => void) | undefined
  readonly holder = `${hostname()}:${process.pid}`
  /** what /metrics and /pipeline/status show */
  readonly stats = {
    leader: false,
    evaluated: 0,
    transitions: 0,
    lastEvaluatedAt: 0,
    errors: 0,
    lastError: '',
  }

  constructor(private readonly opts: EvaluatorOptions) {}

  /** Starts following (and, when it can, leading) in the background. */
  start(): void {
    this.loop ??= this.follow()
  }

  async close(): Promise<void> {
    this.closing.abort()
    this.lost?.(new Error('closing'))
    await this.loop
  }

  get leading(): boolean {
    return this.epoch !== undefined
  }

  private async follow(): Promise<void> {
    const { log } = this.opts
    while (!this.closing.signal.aborted) {
      const client = new pg.Client(this.opts.pool.options)
      client.on('error', (e) => this.lost?.(e))
      try {
        await client.connect()
        const epoch = await takeLead(client, this.holder)
        if (epoch === undefined) {
          await client.end()
          await sleep(this.opts.followMs ?? 5_000, this.closing.signal)
          continue
        }
        this.epoch = epoch
        this.stats.leader = true
        log.info({ epoch, holder: this.holder }, 'alarm evaluator leading')
        await this.lead()
      } catch (error) {
        this.fail(error, 'alarm evaluator lost the lead; following again')
        await sleep(2_000, this.closing.signal)
      } finally {
        this.epoch = undefined
        this.stats.leader = false
        await client.end().catch(() => undefined)
      }
    }
  }

  private fail(error: unknown, message: string): void {
    this.stats.errors++
    this.stats.lastError = String(error)
    this.opts.log.warn({ err: String(error) }, message)
  }

  /** Leads until the lock's connection or a listener is lost, or the evaluator closes. */
  private async lead(): Promise<void> {
    const { pool } = this.opts
    const ended = new Promise<Error>((resolve) => {
      this.lost = resolve
    })
    const listeners: LoadedListener[] = []
    const timers: NodeJS.Timeout[] = []
    try {
      await this.loadState()
      const onLost = (e: Error) => this.lost?.(e)
      listeners.push(
        await listenChannel(pool, LOADED_CHANNEL, (p) => p && this.enqueue(decodeLoaded(p)), onLost),
        await listenChannel(
          pool,
          ALARMS_CHANNEL,
          (p) => p?.includes('"rules"') && this.serial(() => this.loadRules()),
          onLost,
        ),
      )
      // What was loaded while no evaluator listened: from the cursor to where the ETL stands. A
      // partition never evaluated starts where the ETL stands (alarms are about now on).
      const positions = await loadedPositions(pool)
      for (const p of positions)
        this.cursor.set(`${p.topic}:${p.partition}`, this.cursor.get(`${p.topic}:${p.partition}`) ?? p.to)
      this.enqueue(positions)
      timers.push(setInterval(() => this.serial(() => this.tick()), this.opts.tickMs ?? 1_000))
      timers.push(setInterval(() => this.serial(() => this.checkPipeline()), this.opts.pipelineMs ?? 5_000))
      const error = await ended
      if (!this.closing.signal.aborted) throw error
    } finally {
      for (const t of timers) clearInterval(t)
      clearTimeout(this.drainTimer)
      this.draining = false
      this.lost = undefined
      await Promise.all(listeners.map((l) => l.close()))
      await this.work
    }
  }

  private async loadState(): Promise<void> {
    const { pool } = this.opts
    await seedRules(pool, catalogRules(this.opts.catalog()))
    this.conditions = new Conditions(this.opts.catalog())
    const saved = new Map<string, CondState>()
    for (const a of await loadAlarms(pool))
      saved.set(condKey(a.rule_id, a.subject), a.eval as unknown as CondState)
    await this.loadRules(saved)
    this.conditions.resumeAt(Date.now())
    this.cursor = await alarmCursor(pool)
  }

  private async loadRules(saved?: ReadonlyMap<string, CondState>): Promise<void> {
    const rows = await listRules(this.opts.pool)
    this.rules = new Map(rows.flatMap((r) => (ruleOf(r) ? [[r.id, ruleOf(r)!] as const] : [])))
    this.conditions?.setRules([...this.rules.values()], saved)
  }

  /** A new catalog: its default rules are added (never overwriting an edit) and limits followed. */
  async catalogChanged(catalog: Catalog): Promise<void> {
    if (!this.leading) return
    await this.serial(async () => {
      await seedRules(this.opts.pool, catalogRules(catalog))
      this.conditions?.setCatalog(catalog)
      await this.loadRules()
    })
  }

  /** Runs `fn` after the work before it (one evaluation at a time, in order). */
  private serial(fn: () => Promise<unknown>): Promise<void> {
    this.work = this.work.then(async () => {
      if (!this.leading) return
      try {
        await fn()
      } catch (error) {
        // The lead is given up and taken again: state and cursor are read back from PostgreSQL,
        // and what was not committed is evaluated again.
        this.fail(error, 'alarm evaluation failed; resuming from the last commit')
        this.lost?.(error instanceof Error ? error : new Error(String(error)))
      }
    })
    return this.work
  }

  private enqueue(ranges: readonly LoadedRange[]): void {
    for (const r of ranges) {
      const key = `${r.topic}:${r.partition}`
      const had = this.pending.get(key)
      // biome-ignore lint/complexity/useMathMinMax: offsets are bigints, which Math.max does not take
      this.pending.set(key, had ? { ...had, to: had.to > r.to ? had.to : r.to } : r)
    }
    this.scheduleDrain()
  }

  /** A drain, as soon as the one before is `EVALUATE_EVERY_MS` old. */
  private scheduleDrain(): void {
    if (this.draining) return
    this.draining = true
    this.drainTimer = setTimeout(
      () => void this.serial(() => this.drain()),
      Math.max(0, this.lastDrainAt + EVALUATE_EVERY_MS - Date.now()),
    )
  }

  /** Evaluates what was loaded and not yet evaluated, from each partition's cursor. */
  private async drain(): Promise<void> {
    this.draining = false
    this.lastDrainAt = Date.now()
    const ranges: LoadedRange[] = []
    for (const [key, r] of this.pending) {
      const from = this.cursor.get(key) ?? r.from
      if (from < r.to)
        ranges.push({ ...r, from, to: r.to - from > MAX_ROWS ? from + BigInt(MAX_ROWS) : r.to })
      if (from >= r.to) this.pending.delete(key)
    }
    if (ranges.length === 0) return
    const conditions = this.conditions!
    const rows = await readingsForAlarms(this.opts.pool, ranges, conditions.fieldsRead())
    for (const row of rows)
      if (row.data !== null)
        conditions.reading(row.station, row.at, JSON.parse(row.data) as Record<string, unknown>)
    const cursor = new Map(this.cursor)
    for (const r of ranges) cursor.set(`${r.topic}:${r.partition}`, r.to)
    await this.commit(conditions.takeChanges(), [], cursor)
    this.cursor = cursor
    this.stats.evaluated += rows.length
    this.stats.lastEvaluatedAt = Date.now()
    for (const [key, r] of this.pending) if ((this.cursor.get(key) ?? 0n) >= r.to) this.pending.delete(key)
    if (this.pending.size > 0) this.scheduleDrain()
  }

  /** The clock: silent sensors, pending periods and shelves that ran out, then routing and delivery. */
  private async tick(): Promise<void> {
    const now = Date.now()
    this.conditions!.tick(now)
    const forMs = new Map([...this.rules.values()].map((r) => [r.id, r.forMs]))
    const due = await alarmsDue(this.opts.pool, forMs)
    await this.commit(this.conditions!.takeChanges(), due, this.cursor)
    await heartbeat(this.opts.pool, this.epoch!)
    await this.opts.notifier?.run(this.epoch!)
  }

  private async checkPipeline(): Promise<void> {
    const { pool } = this.opts
    const now = Date.now()
    for (const rule of this.conditions!.rulesOf('pipeline')) {
      const check = rule.params.check
      if (check === 'etl-stalled') {
        const h = await etlHealth(pool, this.opts.stallSec)
        this.conditions!.pipeline(
          rule,
          h.stalled,
          h.stall_sec,
          now,
          h.stalled ? `the ETL has made no progress for ${h.stall_sec} s` : 'the ETL moves again',
        )
      } else if (check === 'kafka-node-down') {
        const k = await kafkaNodes(pool)
        const down = k.nodes.filter((n) => !n.up).map((n) => n.node_id)
        this.conditions!.pipeline(
          rule,
          k.down > 0,
          k.down,
          now,
          k.down > 0 ? `Kafka node ${down.join(', ')} down` : 'every Kafka node up',
        )
      } else {
        const n = await deadLettersLastMinute(pool)
        const over = n > rule.params.threshold
        this.conditions!.pipeline(
          rule,
          over,
          n,
          now,
          `${n} dead letters in the last minute (threshold ${rule.params.threshold})`,
        )
      }
    }
    await this.commit(this.conditions!.takeChanges(), [], this.cursor)
  }

  /**
   * One transaction: the lifecycle of every alarm a change or the clock touches, the transitions
   * into the history, the conditions' state and the cursor. Fails (and is retried) unless this
   * process still leads.
   */
  private async commit(
    changes: readonly Change[],
    due: readonly AlarmRow[],
    cursor: ReadonlyMap<string, bigint>,
  ): Promise<void> {
    const dirty = this.conditions!.takeDirty()
    if (changes.length === 0 && due.length === 0 && dirty.length === 0 && cursor === this.cursor) return
    const epoch = this.epoch!
    const events = await inTransaction(this.opts.pool, async (client) => {
      await checkLead(client, epoch)
      const keys = new Map<string, AlarmKey>()
      for (const c of changes) keys.set(condKey(c.rule.id, c.subject), { rule_id: c.rule.id, ...c })
      for (const a of due) keys.set(condKey(a.rule_id, a.subject), a)
      const locked = keys.size > 0 ? await lockAlarms(client, [...keys.values()]) : []
      const moved = new Map(locked.map((a) => [condKey(a.rule_id, a.subject), new Moving(a)]))
      const events: NewAlarmEvent[] = []
      for (const c of changes) {
        const event: AlarmEvent = { kind: 'evaluate', active: c.active, value: c.value, at: c.at }
        events.push(...this.move(moved.get(condKey(c.rule.id, c.subject)), event, c.detail))
      }
      const now = Date.now()
      for (const a of due)
        events.push(...this.move(moved.get(condKey(a.rule_id, a.subject)), { kind: 'tick', at: now }, ''))
      const states = new Map(dirty.map((d) => [d.key, d.state]))
      await writeAlarms(
        client,
        [...moved].filter(([, m]) => m.stepped).map(([key, m]) => m.write(states.get(key))),
      )
      const rest = dirty.filter((d) => !moved.get(d.key)?.stepped)
      await saveEval(
        client,
        rest.map((d) => ({ ...this.keyOf(d.rule, d.subject), eval: d.state })),
      )
      await saveCursor(client, cursor)
      return insertEvents(client, events)
    })
    this.stats.transitions += events.length
  }

  private keyOf(ruleId: string, subject: string): AlarmKey {
    const rule = this.rules.get(ruleId)
    return {
      rule_id: ruleId,
      subject,
      station: rule?.station ?? null,
      measurement: rule?.measurement ?? null,
    }
  }

  /** Moves one alarm's lifecycle by `event`; answers the transitions as the history keeps them. */
  private move(m: Moving | undefined, event: AlarmEvent, detail: string): NewAlarmEvent[] {
    const rule = m && this.rules.get(m.row.rule_id)
    if (!m || !rule) return []
    return m.step(event, rule.forMs).map((t) => historyEvent({ rule, alarm: m.row }, t, detail))
  }
}

type AlarmKey = { rule_id: string; subject: string; station: string | null; measurement: string | null }

/** An alarm locked for a commit, and its lifecycle as the commit moves it. */
class Moving {
  alarm: Alarm
  stepped = false

  constructor(readonly row: AlarmRow) {
    this.alarm = toAlarm(row)
  }

  step(event: AlarmEvent, forMs: number): Transition[] {
    const s = step(this.alarm, event, forMs)
    this.alarm = s.alarm
    this.stepped = true
    return s.transitions
  }

  write(state: CondState | undefined): AlarmWrite {
    return {
      rule_id: this.row.rule_id,
      subject: this.row.subject,
      ...this.alarm,
      eval: state ?? this.row.eval,
      changed: this.alarm.state !== (this.row.state as AlarmState),
    }
  }
}

const toAlarm = (a: AlarmRow): Alarm => ({
  state: a.state as AlarmState,
  active: a.active,
  pendingSince: a.pending_since,
  shelvedUntil: a.shelved_until,
  value: a.value,
})
