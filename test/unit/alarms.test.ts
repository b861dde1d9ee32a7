import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type Alarm, type AlarmEvent, normal, step } from '../../src/alarms/lifecycle.ts'
import { type Notice, plan, receiversOf, type Silence } from '../../src/alarms/routing.ts'
import { firingRules, SpcSeries, type WeRule } from '../../src/alarms/western-electric.ts'

const FOR = 10_000

/** Runs events from NORMAL; answers the states visited and the last alarm. */
function run(
  events: AlarmEvent[],
  from: Alarm = normal(),
): { states: string[]; alarm: Alarm; reasons: string[] } {
  let alarm = from
  const states: string[] = []
  const reasons: string[] = []
  for (const e of events) {
    const s = step(alarm, e, FOR)
    alarm = s.alarm
    for (const t of s.transitions) {
      states.push(`${t.from}→${t.to}`)
      reasons.push(t.reason)
    }
  }
  return { states, alarm, reasons }
}

const on = (at: number, value = 1): AlarmEvent => ({ kind: 'evaluate', active: true, value, at })
const off = (at: number, value = 0): AlarmEvent => ({ kind: 'evaluate', active: false, value, at })
const ack = (at: number): AlarmEvent => ({ kind: 'acknowledge', by: 'ana', comment: 'checking the gun', at })
const tick = (at: number): AlarmEvent => ({ kind: 'tick', at })

describe('the alarm lifecycle (ISA-18.2), on an injected clock', () => {
  it('raises only after the pending period, and not at all when the condition clears within it', () => {
    assert.deepEqual(run([on(0), tick(9_999)]).states, [])
    assert.deepEqual(run([on(0), tick(10_000)]).states, ['NORMAL→UNACK'])
    assert.deepEqual(run([on(0), off(5_000), on(6_000), tick(15_999)]).states, [], 'the period starts again')
    assert.deepEqual(
      run([on(0), on(4_000), on(10_001)]).states,
      ['NORMAL→UNACK'],
      'an evaluation past it raises too',
    )
  })

  it('active unacknowledged → acknowledged → normal', () => {
    const r = run([on(0), tick(FOR), ack(FOR + 1), off(FOR + 2)])
    assert.deepEqual(r.states, ['NORMAL→UNACK', 'UNACK→ACKED', 'ACKED→NORMAL'])
    assert.deepEqual(r.reasons, ['raised', 'acknowledged', 'cleared'])
  })

  it('active unacknowledged → returned to normal unacknowledged → normal on acknowledge, or active again', () => {
    assert.deepEqual(run([on(0), tick(FOR), off(FOR + 1), ack(FOR + 2)]).states, [
      'NORMAL→UNACK',
      'UNACK→RTNUN',
      'RTNUN→NORMAL',
    ])
    assert.deepEqual(run([on(0), tick(FOR), off(FOR + 1), on(FOR + 2)]).states, [
      'NORMAL→UNACK',
      'UNACK→RTNUN',
      'RTNUN→UNACK',
    ])
  })

  it('records who acknowledged, when and why', () => {
    const raised = run([on(0), tick(FOR)]).alarm
    const s = step(raised, ack(20_000), FOR)
    assert.deepEqual(s.transitions, [
      {
        from: 'UNACK',
        to: 'ACKED',
        at: 20_000,
        by: 'ana',
        comment: 'checking the gun',
        value: 1,
        reason: 'acknowledged',
      },
    ])
  })

  it('shelves until an expiry, then comes back as the condition says', () => {
    const shelve = (at: number, until: number): AlarmEvent => ({
      kind: 'shelve',
      by: 'ana',
      comment: 'known',
      until,
      at,
    })
    assert.deepEqual(run([on(0), tick(FOR), shelve(FOR + 1, 60_000), tick(59_999), tick(60_000)]).states, [
      'NORMAL→UNACK',
      'UNACK→SHELVED',
      'SHELVED→UNACK',
    ])
    const cleared = run([on(0), tick(FOR), shelve(FOR + 1, 60_000), off(30_000), tick(60_000)])
    assert.deepEqual(cleared.states, ['NORMAL→UNACK', 'UNACK→SHELVED', 'SHELVED→NORMAL'])
    assert.equal(cleared.reasons.at(-1), 'shelve expired')
    const early = run([
      on(0),
      tick(FOR),
      shelve(FOR + 1, 60_000),
      { kind: 'unshelve', by: 'bo', comment: '', at: 20_000 },
    ])
    assert.deepEqual(early.states.at(-1), 'SHELVED→UNACK')
    // A shelved alarm is not raised by its condition meanwhile.
    assert.deepEqual(run([shelve(0, 60_000), on(1_000), tick(30_000)]).states, ['NORMAL→SHELVED'])
  })

  it('out of service: nothing is raised until it returns to service', () => {
    const oos: AlarmEvent = { kind: 'out-of-service', by: 'ana', comment: 'sensor replaced', at: 0 }
    const back: AlarmEvent = { kind: 'return-to-service', by: 'ana', comment: '', at: 50_000 }
    assert.deepEqual(run([oos, on(1_000), tick(40_000), back, tick(59_999), tick(60_000)]).states, [
      'NORMAL→OUT_OF_SERVICE',
      'OUT_OF_SERVICE→NORMAL',
      'NORMAL→UNACK',
    ])
    const shelveWhileOos: AlarmEvent = { kind: 'shelve', by: 'a', comment: '', until: 9e12, at: 2 }
    assert.deepEqual(run([oos, shelveWhileOos]).states, ['NORMAL→OUT_OF_SERVICE'])
  })

  it('ignores what does not apply: acknowledging a normal alarm, unshelving one not shelved', () => {
    assert.deepEqual(run([ack(0), { kind: 'unshelve', by: 'a', comment: '', at: 1 }, off(2)]).states, [])
  })
})

/** z-scores in, the rules firing at each point out. */
function fired(z: number[], enabled?: WeRule[]): WeRule[][] {
  return z.map((_, i) => firingRules(z.slice(Math.max(0, i - 7), i + 1), enabled))
}
const any = (z: number[], rule: WeRule) => fired(z, [rule]).some((r) => r.length > 0)

describe('the Western Electric rules', () => {
  it('WE1: one point beyond 3σ, on either side; not at 3σ exactly', () => {
    assert.deepEqual(fired([0, 0.5, 3.1, 0], ['WE1']), [[], [], ['WE1'], []])
    assert.ok(any([0, -3.2], 'WE1'))
    assert.ok(!any([3, -3, 2.9], 'WE1'))
  })

  it('WE2: 2 of 3 beyond 2σ on one side; not on opposite sides, not 2 of 4', () => {
    assert.deepEqual(fired([2.1, 0, 2.2], ['WE2']), [[], [], ['WE2']])
    assert.ok(any([-2.5, -2.1], 'WE2'))
    assert.ok(!any([2.1, -2.1, 0, 2.1, -2.1], 'WE2'))
    assert.ok(!any([2.1, 0, 0, 2.1], 'WE2'))
  })

  it('WE3: 4 of 5 beyond 1σ on one side; not 3 of 5', () => {
    assert.deepEqual(fired([1.1, 1.2, 0, 1.5, 1.3], ['WE3']).at(-1), ['WE3'])
    assert.ok(any([-1.2, -1.1, -1.5, -1.9], 'WE3'))
    assert.ok(!any([1.1, 0, 1.2, 0, 1.3, 0, 1.4], 'WE3'))
  })

  it('WE4: 8 in a row on one side of the centre; not 7, not broken by a point on the other side', () => {
    assert.deepEqual(fired([0.1, 0.2, 0.1, 0.3, 0.1, 0.2, 0.1, 0.4], ['WE4']).at(-1), ['WE4'])
    assert.ok(!any([0.1, 0.2, 0.1, 0.3, 0.1, 0.2, 0.1], 'WE4'))
    assert.ok(!any([0.1, 0.2, 0.1, -0.3, 0.1, 0.2, 0.1, 0.4], 'WE4'))
    assert.ok(any([-0.1, -0.2, -0.1, -0.3, -0.1, -0.2, -0.1, -0.4], 'WE4'))
  })

  it('a process in control fires nothing over 10,000 points more often than chance allows', () => {
    // Deterministic normal draws (Box–Muller on a fixed LCG): the false-alarm rate of all four
    // rules together is about 1 in 90 points for a normal process.
    let seed = 12345
    const u = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31
      return (seed + 1) / (2 ** 31 + 1)
    }
    const series = new SpcSeries(10, 0.5)
    let alarms = 0
    for (let i = 0; i < 10_000; i++) {
      const z = Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())
      if (series.push(10 + z * 0.5).length > 0) alarms++
    }
    assert.ok(alarms > 30 && alarms < 250, `${alarms} alarms in 10,000 points`)
  })

  it('a mean shift of 1.5σ is caught within a few dozen points', () => {
    const series = new SpcSeries(10, 0.5)
    let at = -1
    for (let i = 0; i < 100 && at < 0; i++) {
      // A shifted process, with a little deterministic noise around +1.5σ.
      const noise = ((i * 37) % 11) / 11 - 0.5
      if (series.push(10 + (1.5 + noise) * 0.5).length > 0) at = i
    }
    assert.ok(at >= 0 && at < 10, `caught at point ${at}`)
  })

  it('switches rules off per measurement', () => {
    assert.deepEqual(firingRules([0, 3.5], ['WE2', 'WE3', 'WE4']), [])
  })
})

describe('routing, grouping, silences and the flood guard', () => {
  const notice = (id: number, station = 'paint', severity: Notice['severity'] = 'high', at = 0): Notice => ({
    id,
    alarm: `${station}.booth_temp.spec`,
    station,
    measurement: 'booth_temp',
    rule: 'spec',
    severity,
    from: 'NORMAL',
    to: 'UNACK',
    value: 27,
    at,
  })
  const policy = {
    routes: [
      { severities: ['critical', 'high'] as const, receivers: ['mail:shift', 'webhook:mes'] },
      { stations: ['paint'], receivers: ['mail:paint-team'] },
    ],
    groupWaitMs: 10_000,
    floodLimit: 5,
    floodWindowMs: 600_000,
  }

  it('routes by severity and station', () => {
    assert.deepEqual(receiversOf(notice(1), policy.routes), ['mail:shift', 'webhook:mes', 'mail:paint-team'])
    assert.deepEqual(receiversOf(notice(1, 'battery', 'low'), policy.routes), [])
    assert.deepEqual(receiversOf(notice(1, 'paint', 'low'), policy.routes), ['mail:paint-team'])
  })

  const ctx = (now: number, silences: Silence[] = [], recent = new Map()) => ({ now, silences, recent })
  const one = { ...policy, routes: [{ receivers: ['mail:shift'] }] }

  it('sends a burst on one station as one message after the group wait', () => {
    const burst = [1, 2, 3].map((i) => notice(i, 'paint', 'high', i * 1000))
    const all = [...burst, notice(4, 'battery', 'high', 2000)]
    assert.deepEqual(plan(all, one, ctx(10_999)), { messages: [], routed: [] }, 'still in the group wait')
    const p = plan(all, one, ctx(11_000))
    assert.deepEqual(
      p.messages.map((m) => [m.station, m.notices.map((n) => n.id)]),
      [['paint', [1, 2, 3]]],
    )
    assert.deepEqual(
      p.routed.map((r) => r.id),
      [1, 2, 3],
      'battery waits for its own group wait',
    )
    assert.deepEqual(
      plan([all[3]!], one, ctx(12_000)).messages.map((m) => [m.station, m.notices.map((n) => n.id)]),
      [['battery', [4]]],
    )
  })

  it('keeps a silenced notice out of every message, only while the silence lasts', () => {
    const window: Silence = { id: 's1', stations: ['paint'], startsAt: 0, endsAt: 60_000 }
    const p = plan([notice(1), notice(2, 'battery')], { ...one, groupWaitMs: 0 }, ctx(1000, [window]))
    assert.deepEqual(p.routed, [
      { id: 1, silencedBy: 's1' },
      { id: 2, silencedBy: null },
    ])
    assert.deepEqual(
      p.messages.map((m) => m.station),
      ['battery'],
    )
    const later = plan(
      [notice(3, 'paint', 'high', 60_000)],
      { ...one, groupWaitMs: 0 },
      ctx(60_000, [window]),
    )
    assert.equal(later.routed[0]!.silencedBy, null, 'expired')
    assert.equal(later.messages.length, 1)
  })

  it('past the flood limit, one summary instead of more messages', () => {
    const flood = { ...one, groupWaitMs: 0 }
    const recent = new Map<string, { notices: number; lastSummary: number | null }>()
    const messages: string[] = []
    const guarded: number[] = []
    for (let i = 1; i <= 30; i++) {
      const p = plan([notice(i, `station_${i}`, 'high', i * 1000)], flood, ctx(i * 1000, [], recent))
      for (const m of p.messages) {
        messages.push(`${m.kind}:${m.notices.length}:${m.withheld}`)
        const r = recent.get(m.receiver) ?? { notices: 0, lastSummary: null }
        if (m.kind === 'group') r.notices += m.notices.length
        else r.lastSummary = i * 1000
        recent.set(m.receiver, r)
      }
      for (const r of p.routed) if (r.silencedBy === 'flood-guard') guarded.push(r.id)
    }
    assert.deepEqual(messages.slice(0, 5), ['group:1:0', 'group:1:0', 'group:1:0', 'group:1:0', 'group:1:0'])
    assert.deepEqual(messages.slice(5), ['flood-summary:1:1'], 'one summary in the window')
    assert.equal(guarded.length, 24, 'the rest recorded as held back by the flood guard')
    const after = plan([notice(31, 'x', 'high', 700_000)], flood, ctx(700_000, [], new Map()))
    assert.deepEqual(
      after.messages.map((m) => m.kind),
      ['group'],
      'a new window sends again',
    )
  })
})
