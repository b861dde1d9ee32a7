import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Conditions, STALE_SAVE_MS } from '../../src/alarms/conditions.ts'
import { parseRoutes } from '../../src/alarms/index.ts'
import { catalogRules, checkRule, type Rule, RuleError, ruleOf } from '../../src/alarms/rules.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { loadConfig } from '../../src/config/index.ts'

const catalog = catalogFromFile()
const at = Date.parse('2026-12-05T08:00:00Z')

/** A checked rule as the evaluator holds it. */
function rule(input: object): Rule {
  const row = checkRule(input, catalog)
  return ruleOf({ ...row, updated_at: new Date(at) })!
}

describe('alarm rules', () => {
  it('checks a rule against its kind and the catalog, naming each problem', () => {
    assert.throws(
      () => checkRule({ kind: 'spec', station: 'paint', measurement: 'nope' }, catalog),
      /measurement: "nope" is not a measurement of paint/,
    )
    assert.throws(
      () => checkRule({ kind: 'spc', station: 'mars', measurement: 'x' }, catalog),
      /station: "mars" is not a station/,
    )
    assert.throws(
      () =>
        checkRule(
          { kind: 'spc', station: 'paint', measurement: 'booth_temp', params: { we: ['WE9'] } },
          catalog,
        ),
      RuleError,
    )
    assert.throws(
      () =>
        checkRule(
          { kind: 'spc', station: 'paint', measurement: 'booth_temp', params: { source: 'fixed' } },
          catalog,
        ),
      /needs centre and sigma/,
    )
    assert.throws(
      () => checkRule({ kind: 'pipeline', params: { check: 'moon-phase' } }, catalog),
      /params\.check/,
    )
    assert.throws(() => checkRule({ kind: 'alarm-everything' }, catalog), /kind/)
    const ok = checkRule(
      { kind: 'spc', station: 'paint', measurement: 'booth_temp', params: { we: ['WE1'] } },
      catalog,
    )
    assert.equal(ok.id, 'spc:paint:booth_temp')
    assert.deepEqual((ok.params as { we: string[] }).we, ['WE1'])
  })

  it('makes the defaults from the catalog: spec on, SPC off, stale per station, the pipeline rules', () => {
    const rules = catalogRules(catalog)
    const ids = rules.map((r) => r.id)
    assert.ok(ids.includes('spec:paint:booth_temp'))
    assert.equal(rules.find((r) => r.id === 'spc:paint:booth_temp')!.enabled, false)
    assert.ok(ids.includes('stale:paint'))
    assert.deepEqual(ids.filter((i) => i.startsWith('pipeline:')).sort(), [
      'pipeline:dead-letter-rate',
      'pipeline:etl-stalled',
      'pipeline:kafka-node-down',
    ])
    for (const r of rules) assert.doesNotThrow(() => checkRule(r, catalog), r.id)
  })

  it('reads the routes setting, and refuses an unknown severity by the setting’s name', () => {
    assert.deepEqual(parseRoutes('email:critical,high@paint webhook'), [
      { receivers: ['email'], severities: ['critical', 'high'], stations: ['paint'] },
      { receivers: ['webhook'], severities: [], stations: [] },
    ])
    assert.throws(
      () => parseRoutes('email:urgent'),
      /EVF_ALARM_ROUTES: unknown severity urgent; allowed: critical, high, medium, low/,
    )
  })

  it('stops start-up on a webhook without a secret, or half an e-mail configuration', () => {
    assert.throws(
      () => loadConfig({ alarmWebhookUrl: 'http://mes.plant/hook' }, {}),
      /EVF_ALARM_WEBHOOK_SECRET/,
    )
    assert.throws(() => loadConfig({ smtpUrl: 'smtp://mail:25' }, {}), /EVF_ALARM_EMAIL_TO/)
    assert.throws(() => loadConfig({ alarmRoutes: 'pager' }, {}), /alarmRoutes/)
  })
})

describe('conditions on the stream', () => {
  it('spec: active above the USL, cleared only back inside by the deadband', () => {
    const c = new Conditions(catalog)
    c.setRules([rule({ kind: 'spec', station: 'paint', measurement: 'booth_temp', deadband: 0.5 })])
    const temps = [22, 26.5, 25.8, 25.6, 25.4, 27]
    const seen = temps.map((t, i) => {
      c.reading('paint', at + i * 1000, { booth_temp: t })
      return c.takeChanges().map((x) => `${x.active ? 'on' : 'off'}@${t}`)
    })
    assert.deepEqual(seen.flat(), ['on@26.5', 'off@25.4', 'on@27'])
  })

  it('spec with an off-delay: spikes keep one alarm raised; it clears after clear_ms back inside', () => {
    const c = new Conditions(catalog)
    c.setRules([
      rule({
        kind: 'spec',
        station: 'paint',
        measurement: 'booth_temp',
        deadband: 0.5,
        params: { clear_ms: 5000 },
      }),
    ])
    // a spike every 2 s, then calm: inside from 6 s on, cleared by the reading at 11 s
    const temps = [22, 27, 22, 27, 22, 27, 22, 22, 22, 22, 22, 22, 22]
    const seen = temps.map((t, i) => {
      c.reading('paint', at + i * 1000, { booth_temp: t })
      return c.takeChanges().map((x) => `${x.active ? 'on' : 'off'}@${i}s`)
    })
    assert.deepEqual(seen.flat(), ['on@1s', 'off@11s'])
  })

  it("the catalog's spec rules carry an off-delay; a rule written without one clears at once", () => {
    const spec = catalogRules(catalog).find((r) => r.id === 'spec:paint:booth_temp')!
    assert.equal((spec.params as { clear_ms: number }).clear_ms, 10_000)
    const own = checkRule({ kind: 'spec', station: 'paint', measurement: 'booth_temp' }, catalog)
    assert.deepEqual(own.params, { clear_ms: 0 })
    assert.throws(
      () =>
        checkRule(
          { kind: 'spec', station: 'paint', measurement: 'booth_temp', params: { clear_ms: -1 } },
          catalog,
        ),
      /params\.clear_ms/,
    )
  })

  it('SPC: learns its baseline, then fires Western Electric rule 1 on a mean shift, and clears after calm subgroups', () => {
    const c = new Conditions(catalog)
    const spc = rule({
      kind: 'spc',
      station: 'paint',
      measurement: 'booth_temp',
      params: { we: ['WE1'], subgroup: 4, baseline: 20, clear_after: 3 },
    })
    c.setRules([spc])
    let x = 1
    const noise = () => {
      x = (x * 16807) % 2147483647
      return (x / 2147483647 - 0.5) * 1.0
    }
    let t = at
    const feed = (n: number, mean: number) => {
      const out: string[] = []
      for (let i = 0; i < n; i++) {
        t += 1000
        c.reading('paint', t, { booth_temp: mean + noise() })
        out.push(...c.takeChanges().map((ch) => `${ch.active ? 'on' : 'off'}:${ch.detail}`))
      }
      return out
    }
    assert.deepEqual(feed(80, 22), [], 'the baseline (20 subgroups of 4) raises nothing')
    assert.deepEqual(feed(200, 22), [], 'in control')
    const shifted = feed(8, 25)
    assert.equal(shifted.length, 1)
    assert.match(shifted[0]!, /^on:subgroup mean 2[45]\.\d+ \(WE1: one point beyond 3σ\)/)
    const back = feed(40, 22)
    assert.deepEqual(back, ['off:3 subgroups in control'])
  })

  it('stale: a sensor silent past its intervals is active, and clears when it speaks', () => {
    const c = new Conditions(catalog)
    c.setRules([rule({ kind: 'stale', station: 'paint', params: { intervals: 5, min_silent_ms: 1000 } })])
    for (let i = 0; i < 10; i++) c.reading('paint', at + i * 1000, { sensor_id: 'paint-1', booth_temp: 22 })
    c.tick(at + 9000 + 4000)
    assert.deepEqual(c.takeChanges(), [], 'within 5 intervals')
    c.tick(at + 9000 + 6000)
    const [silent] = c.takeChanges()
    assert.equal(silent?.subject, 'paint-1')
    assert.equal(silent?.active, true)
    c.reading('paint', at + 20_000, { sensor_id: 'paint-1', booth_temp: 22 })
    assert.deepEqual(
      c.takeChanges().map((x) => [x.subject, x.active]),
      [['paint-1', false]],
    )
    // A restart an hour later: the silence counts from the restart, not from the last reading.
    const later = at + 3_600_000
    const resumed = new Conditions(catalog)
    resumed.setRules(
      [rule({ kind: 'stale', station: 'paint', params: { intervals: 5, min_silent_ms: 1000 } })],
      new Map(c.takeDirty().map((d) => [d.key, d.state])),
    )
    resumed.resumeAt(later)
    resumed.tick(later + 500)
    assert.deepEqual(resumed.takeChanges(), [], 'not stale at the restart')
    resumed.tick(later + 20_000)
    assert.equal(resumed.takeChanges()[0]?.active, true, 'stale once silent that long after it')
  })

  it('stale: a live sensor is saved on its first reading, then once a minute, and a change at once', () => {
    const c = new Conditions(catalog)
    c.setRules([rule({ kind: 'stale', station: 'paint', params: { intervals: 5, min_silent_ms: 1000 } })])
    const saved = (from: number, to: number) => {
      for (let t = from; t < to; t += 100) c.reading('paint', t, { sensor_id: 'paint-1', booth_temp: 22 })
      return c.takeDirty().map((d) => d.subject)
    }
    assert.deepEqual(saved(at, at + 1000), ['paint-1'], 'the first reading')
    assert.deepEqual(saved(at + 1000, at + STALE_SAVE_MS - 100), [], 'not while it reports as usual')
    assert.deepEqual(
      saved(at + STALE_SAVE_MS - 100, at + STALE_SAVE_MS + 100),
      ['paint-1'],
      'a minute after the last save',
    )
    c.tick(at + STALE_SAVE_MS + 100 + 10_000)
    assert.equal(c.takeChanges()[0]?.active, true)
    assert.deepEqual(
      c.takeDirty().map((d) => d.subject),
      ['paint-1'],
      'gone stale: saved at once',
    )
    assert.deepEqual(saved(at + 80_000, at + 80_100), ['paint-1'], 'back: saved at once')
  })
})
