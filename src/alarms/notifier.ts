/**
 * Telling people (docs/alarms.md), in two steps that each commit before the next: the router puts
 * the transitions to announce into messages (grouped per station, silenced, flood-guarded, and
 * repeated while unacknowledged) in the outbox, in the same transaction that marks them routed;
 * the deliverer sends what the outbox holds, one attempt at a time, retrying with backoff until the
 * receiver answers 2xx or 250. A message's key goes with it, so a receiver can drop the rare
 * duplicate (a crash between a receiver's answer and the outbox's update).
 */
import {
  alarmsToRepeat,
  checkLead,
  dueMessages,
  enqueue,
  inTransaction,
  listSilences,
  markFailed,
  markNotified,
  markRouted,
  markSent,
  type NewOutboxMessage,
  type OutboxRow,
  type Pool,
  recentDeliveries,
  unroutedEvents,
} from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { backoff } from '../shared/time.ts'
import type { AlarmState } from './lifecycle.ts'
import { buildPayload } from './payload.ts'
import { type Message, type Notice, plan, type RoutingPolicy, receiversOf, type Severity } from './routing.ts'

/** Sends one message to one receiver; throws to say it did not arrive. */
export type Sender = (message: OutboxRow) => Promise<void>

export interface NotifierOptions {
  pool: Pool
  log: Logger
  policy: RoutingPolicy
  /** the receivers that exist, by name (`email`, `webhook`) */
  senders: ReadonlyMap<string, Sender>
  /** how often an unacknowledged alarm is told again, ms */
  repeatMs: number
  /** a message not taken for this long is given up (`expired`), ms */
  expireMs?: number
  dashboardUrl?: string | undefined
}

export class Notifier {
  /** what /metrics shows of this process's deliveries */
  readonly stats = { sent: new Map<string, number>(), failed: new Map<string, number>() }
  private delivering: Promise<void> | undefined

  constructor(private readonly opts: NotifierOptions) {}

  /** One round: route, then deliver (the delivery goes on in the background if it is slow). */
  async run(epoch: number): Promise<void> {
    try {
      await this.route(epoch)
    } catch (error) {
      this.opts.log.warn({ err: String(error) }, 'alarm routing failed; tried again in a second')
    }
    this.delivering ??= this.deliver().finally(() => {
      this.delivering = undefined
    })
  }

  async close(): Promise<void> {
    await this.delivering
  }

  private async route(epoch: number): Promise<void> {
    const { policy, senders } = this.opts
    await inTransaction(this.opts.pool, async (client) => {
      await checkLead(client, epoch)
      const now = Date.now()
      const events = await unroutedEvents(client)
      const repeats = await alarmsToRepeat(client, this.opts.repeatMs)
      if (events.length === 0 && repeats.length === 0) return
      const silences = (await listSilences(client)).map((s) => ({
        id: s.id,
        stations: s.stations,
        measurements: s.measurements,
        severities: s.severities as Severity[],
        rules: s.rules,
        startsAt: Date.parse(s.starts_at),
        endsAt: Date.parse(s.ends_at),
      }))
      const notices: Notice[] = events.map((e) => ({
        id: e.id,
        alarm: e.subject ? `${e.rule_id}/${e.subject}` : e.rule_id,
        station: e.station ?? 'pipeline',
        measurement: e.measurement,
        rule: e.rule_id,
        severity: e.severity as Severity,
        from: e.from_state as AlarmState,
        to: e.to_state as AlarmState,
        value: e.value,
        at: Date.parse(e.at),
        reason: e.reason,
      }))
      const recent = await recentDeliveries(client, new Date(now - policy.floodWindowMs))
      const live = {
        ...policy,
        routes: policy.routes.map((r) => ({ ...r, receivers: r.receivers.filter((x) => senders.has(x)) })),
      }
      const p = plan(notices, live, { now, silences, recent })
      const out: NewOutboxMessage[] = p.messages.map((m) => this.outboxMessage(m, now))
      // Still unacknowledged after the repeat interval: told again (not silenced ones: never told).
      for (const [receiver, list] of this.repeatsByReceiver(repeats, live)) {
        const m: Message = { receiver, kind: 'repeat', station: null, notices: list, withheld: 0 }
        out.push(this.outboxMessage(m, now))
      }
      await enqueue(client, out)
      await markRouted(
        client,
        p.routed.map((r) => ({ id: r.id, silenced_by: r.silencedBy })),
      )
      const told = new Map<string, { rule_id: string; subject: string }>()
      for (const m of p.messages)
        for (const n of m.notices) {
          const e = events.find((x) => x.id === n.id)
          if (e) told.set(`${e.rule_id}\u0000${e.subject}`, { rule_id: e.rule_id, subject: e.subject })
        }
      for (const r of repeats) told.set(`${r.rule_id}\u0000${r.subject}`, r)
      await markNotified(client, [...told.values()])
      if (out.length > 0)
        this.opts.log.info(
          {
            messages: out.map((m) => ({
              key: m.key,
              receiver: m.receiver,
              kind: m.kind,
              notices: m.notices,
            })),
          },
          'alarm notifications queued',
        )
    })
  }

  private repeatsByReceiver(
    repeats: readonly {
      rule_id: string
      subject: string
      station: string | null
      severity: string
      value: number | null
      measurement: string | null
    }[],
    policy: RoutingPolicy,
  ): Map<string, Notice[]> {
    const out = new Map<string, Notice[]>()
    const now = Date.now()
    for (const r of repeats) {
      const n: Notice = {
        id: 0,
        alarm: r.subject ? `${r.rule_id}/${r.subject}` : r.rule_id,
        station: r.station ?? 'pipeline',
        measurement: r.measurement,
        rule: r.rule_id,
        severity: r.severity as Severity,
        from: 'UNACK',
        to: 'UNACK',
        value: r.value,
        at: now,
        reason: 'still unacknowledged',
      }
      for (const receiver of receiversOf(n, policy.routes))
        out.set(receiver, [...(out.get(receiver) ?? []), n])
    }
    return out
  }

  private outboxMessage(m: Message, now: number): NewOutboxMessage {
    const ids = m.notices.map((n) => n.id)
    const key =
      m.kind === 'repeat'
        ? `evf-${m.receiver}-repeat-${now}-${m.notices.map((n) => n.alarm).join(',')}`.slice(0, 200)
        : `evf-${m.receiver}-${m.kind}-${Math.min(...ids)}-${Math.max(...ids)}`
    return {
      key,
      receiver: m.receiver,
      kind: m.kind,
      station: m.station,
      notices: m.kind === 'flood-summary' ? m.withheld : m.notices.length,
      payload: buildPayload(m, { key, sentAt: now, dashboardUrl: this.opts.dashboardUrl }),
    }
  }

  /** Sends what is due, oldest first; a failure waits its backoff, up to 5 minutes. */
  private async deliver(): Promise<void> {
    const { pool, senders, log } = this.opts
    const expireMs = this.opts.expireMs ?? 24 * 3_600_000
    for (;;) {
      let due: OutboxRow[]
      try {
        due = await dueMessages(pool, 20)
      } catch (error) {
        log.warn({ err: String(error) }, 'alarm outbox unreadable; tried again in a second')
        return
      }
      if (due.length === 0) return
      let failed = false
      for (const m of due) {
        const send = senders.get(m.receiver)
        try {
          if (!send) throw new Error(`no receiver "${m.receiver}" is configured`)
          await send(m)
          await markSent(pool, m.id)
          this.count(this.stats.sent, m.receiver)
          log.info(
            { key: m.key, receiver: m.receiver, attempts: m.attempts + 1 },
            'alarm notification delivered',
          )
        } catch (error) {
          failed = true
          const expired = Date.now() - m.created_at.getTime() > expireMs
          this.count(this.stats.failed, m.receiver)
          log.warn(
            { key: m.key, receiver: m.receiver, attempt: m.attempts + 1, err: String(error), expired },
            expired ? 'alarm notification given up' : 'alarm notification failed; retrying',
          )
          await markFailed(pool, m.id, String(error), backoff(m.attempts + 1, 300_000), expired).catch(
            () => undefined,
          )
        }
      }
      // After a failure, the next round starts from the outbox again (never a tight loop).
      if (failed) return
    }
  }

  private count(map: Map<string, number>, receiver: string): void {
    map.set(receiver, (map.get(receiver) ?? 0) + 1)
  }
}
