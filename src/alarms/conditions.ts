/**
 * The rules' conditions on the live stream (docs/alarms.md): each reading updates the spec and SPC
 * conditions of its measurements and the stale clock of its sensor; the clock ticks the stale
 * rules; the pipeline checks are told from outside. What comes out is the list of conditions that
 * changed (became active, or cleared), for the lifecycle. Pure: the state of every condition is a
 * plain object the evaluator keeps in PostgreSQL, so a restart resumes where it stood.
 */
import { type Catalog, type Measurement, specAt } from '../catalog/index.ts'
import { catalogSigma, type Rule } from './rules.ts'
import { specActive } from './spec.ts'
import { firingRules, WE_RULES, type WeRule } from './western-electric.ts'

/** The state each condition keeps (one shape per kind, in one object). */
export interface CondState {
  on: boolean
  /** spc: the rule's revision the series was learned under */
  rev?: string
  /** spc: the open subgroup */
  n?: number
  sum?: number
  /** spc: the last points, as z-scores */
  z?: number[]
  /** spc: the baseline being learned (subgroup means) */
  base?: { n: number; sum: number; sumsq: number }
  /** spc: the centre and σ of a subgroup mean, once known */
  centre?: number
  sigma?: number
  /** spc: in-control subgroups in a row while on */
  calm?: number
  /** stale: the sensor's last reading time and its usual interval (ms) */
  last?: number
  gap?: number
  /**
   * spec: while an off-delay (`clear_ms`) runs, the reading time the value came back inside at;
   * not saved on its own (after a restart the off-delay starts again)
   */
  inside?: number
  /** stale: the reading time this state was last marked to be saved at */
  saved?: number
}

/**
 * A live sensor's stale condition is saved at most this often (ms of reading time), not at each
 * of its readings: after a restart its silence counts from the restart anyway (`resumeAt`), and
 * its usual interval moves slowly. At 35,000 readings/s saving each one was 2,600 upserts per
 * evaluation, 11 % of PostgreSQL's time. A change of state is saved at once.
 */
export const STALE_SAVE_MS = 60_000

/** A condition that changed. */
export interface Change {
  rule: Rule
  subject: string
  station: string | null
  measurement: string | null
  active: boolean
  value: number | null
  at: number
  /** what the condition saw, in words (which Western Electric rule, how long silent) */
  detail: string
}

export const condKey = (ruleId: string, subject: string): string => `${ruleId}\u0000${subject}`

interface Bound {
  rule: Rule
  measurement: Measurement | undefined
}

export class Conditions {
  private rules: Rule[] = []
  /** per station: per measurement, the spec and SPC rules on it */
  private byStation = new Map<string, Map<string, Bound[]>>()
  private stale = new Map<string, Rule>()
  private readonly states = new Map<string, CondState>()
  private readonly dirty = new Set<string>()
  private changes: Change[] = []
  private readonly keys = new Map<string, Map<string, string>>()

  constructor(private catalog: Catalog) {}

  /** The rules in force (enabled ones), and the states saved for them. */
  setRules(rules: readonly Rule[], saved?: ReadonlyMap<string, CondState>): void {
    this.rules = rules.filter((r) => r.enabled)
    if (saved) for (const [k, v] of saved) if (!this.states.has(k)) this.states.set(k, v)
    this.bind()
  }

  setCatalog(catalog: Catalog): void {
    this.catalog = catalog
    this.bind()
  }

  private bind(): void {
    this.byStation = new Map()
    this.stale = new Map()
    for (const rule of this.rules) {
      if (rule.kind === 'stale') this.stale.set(rule.station, rule)
      if (rule.kind !== 'spec' && rule.kind !== 'spc') continue
      const m = this.catalog.known(rule.station)?.measurements.find((x) => x.name === rule.measurement)
      const perMeasurement = this.byStation.get(rule.station) ?? new Map<string, Bound[]>()
      this.byStation.set(rule.station, perMeasurement)
      perMeasurement.set(rule.measurement, [
        ...(perMeasurement.get(rule.measurement) ?? []),
        { rule, measurement: m },
      ])
    }
  }

  /** Per station, the fields of a reading its rules read (the evaluator asks for only these). */
  fieldsRead(): Map<string, string[]> {
    const out = new Map<string, string[]>()
    for (const station of this.stale.keys()) out.set(station, ['sensor_id'])
    for (const [station, perMeasurement] of this.byStation)
      out.set(station, [...(out.get(station) ?? []), ...perMeasurement.keys()])
    return out
  }

  /** A condition's key (`condKey`), made once: a reading looks up several, and new strings cost. */
  private key(ruleId: string, subject: string): string {
    let bySubject = this.keys.get(ruleId)
    if (!bySubject) {
      bySubject = new Map()
      this.keys.set(ruleId, bySubject)
    }
    let key = bySubject.get(subject)
    if (key === undefined) {
      key = condKey(ruleId, subject)
      bySubject.set(subject, key)
    }
    return key
  }

  private state(key: string): CondState {
    let s = this.states.get(key)
    if (!s) {
      s = { on: false }
      this.states.set(key, s)
    }
    return s
  }

  /** One loaded reading: `data` is its transformed JSON object. */
  reading(station: string, at: number, data: Record<string, unknown>): void {
    const staleRule = this.stale.get(station)
    if (staleRule)
      this.seen(staleRule, typeof data.sensor_id === 'string' ? data.sensor_id : station, station, at)
    const rules = this.byStation.get(station)
    if (!rules) return
    for (const [name, bound] of rules) {
      const value = data[name]
      if (typeof value !== 'number') continue
      for (const b of bound) {
        if (b.rule.kind === 'spec') this.spec(b, station, value, at)
        else if (b.rule.kind === 'spc') this.spc(b, station, value, at)
      }
    }
  }

  private spec({ rule, measurement }: Bound, station: string, value: number, at: number): void {
    if (!measurement || rule.kind !== 'spec') return
    const limits = specAt(measurement, at / 1000)
    if (!limits) return
    const key = this.key(rule.id, '')
    const s = this.state(key)
    const on = specActive(value, limits, rule.deadband, s.on)
    const clearMs = rule.params.clear_ms ?? 0
    if (s.on && clearMs > 0) {
      if (on) s.inside = undefined
      else {
        s.inside ??= at
        if (at - s.inside < clearMs) return
      }
    }
    if (on === s.on) return
    s.on = on
    s.inside = undefined
    this.dirty.add(key)
    const limit = on
      ? limits.usl !== undefined && value > limits.usl
        ? `above USL ${limits.usl}`
        : `below LSL ${limits.lsl}`
      : 'back inside the limits'
    this.change(rule, '', station, rule.measurement, on, value, at, `${value} ${limit}`)
  }

  private spc({ rule, measurement }: Bound, station: string, value: number, at: number): void {
    if (rule.kind !== 'spc') return
    const p = rule.params
    const key = this.key(rule.id, '')
    let s = this.state(key)
    if (s.rev !== rule.revision) {
      s = fresh(rule, measurement, s.on)
      this.states.set(key, s)
    }
    s.n = (s.n ?? 0) + 1
    s.sum = (s.sum ?? 0) + value
    this.dirty.add(key)
    if (s.n < p.subgroup) return
    const mean = s.sum / s.n
    s.n = 0
    s.sum = 0
    if (s.base) {
      s.base.n++
      s.base.sum += mean
      s.base.sumsq += mean * mean
      if (s.base.n < p.baseline) return
      const centre = s.base.sum / s.base.n
      const variance = (s.base.sumsq - s.base.n * centre * centre) / (s.base.n - 1)
      s.base = undefined
      s.centre = centre
      s.sigma = Math.sqrt(Math.max(variance, 0)) || Number.EPSILON
      return
    }
    const z = [...(s.z ?? []), (mean - s.centre!) / s.sigma!].slice(-8)
    s.z = z
    const fired = firingRules(z, p.we as WeRule[])
    if (fired.length > 0) {
      s.calm = 0
      if (!s.on) {
        s.on = true
        const what = fired.map((r) => `${r}: ${WE_RULES[r]}`).join('; ')
        this.change(
          rule,
          '',
          station,
          rule.measurement,
          true,
          round(mean),
          at,
          `subgroup mean ${round(mean)} (${what})`,
        )
      }
      return
    }
    if (!s.on) return
    s.calm = (s.calm ?? 0) + 1
    if (s.calm >= p.clear_after) {
      s.on = false
      s.calm = 0
      this.change(
        rule,
        '',
        station,
        rule.measurement,
        false,
        round(mean),
        at,
        `${p.clear_after} subgroups in control`,
      )
    }
  }

  private seen(rule: Rule, sensor: string, station: string, at: number): void {
    const key = this.key(rule.id, sensor)
    const s = this.state(key)
    if (s.last !== undefined && at > s.last) {
      const gap = at - s.last
      s.gap = s.gap === undefined ? gap : 0.9 * s.gap + 0.1 * gap
    }
    const first = s.last === undefined
    s.last = Math.max(s.last ?? at, at)
    if (s.on) {
      s.on = false
      this.dirty.add(key)
      this.change(rule, sensor, station, null, false, 0, at, `${sensor} reports again`)
    } else if (first || at - (s.saved ?? 0) >= STALE_SAVE_MS) {
      s.saved = at
      this.dirty.add(key)
    }
  }

  /**
   * After a restart: a sensor's silence counts from now, not from its last reading before the
   * stop (every sensor would otherwise be stale for the seconds readings take to flow again).
   */
  resumeAt(now: number): void {
    for (const s of this.states.values()) if (s.last !== undefined && !s.on) s.last = Math.max(s.last, now)
  }

  /** The clock: sensors silent for too long. */
  tick(now: number): void {
    for (const [key, s] of this.states) {
      if (s.last === undefined || s.on) continue
      const [ruleId, sensor] = key.split('\u0000') as [string, string]
      const rule = [...this.stale.values()].find((r) => r.id === ruleId)
      if (rule?.kind !== 'stale') continue
      const limit = Math.max(rule.params.intervals * (s.gap ?? 0), rule.params.min_silent_ms)
      const silent = now - s.last
      if (silent <= limit) continue
      s.on = true
      this.dirty.add(key)
      const sec = Math.round(silent / 1000)
      this.change(rule, sensor, rule.station, null, true, sec, now, `${sensor} silent for ${sec} s`)
    }
  }

  /** A pipeline check's outcome (the evaluator runs the checks). */
  pipeline(rule: Rule, active: boolean, value: number, at: number, detail: string): void {
    const key = this.key(rule.id, '')
    const s = this.state(key)
    if (s.on === active) return
    s.on = active
    this.dirty.add(key)
    this.change(rule, '', null, null, active, value, at, detail)
  }

  private change(
    ...[rule, subject, station, measurement, active, value, at, detail]: [
      Rule,
      string,
      string | null,
      string | null,
      boolean,
      number | null,
      number,
      string,
    ]
  ): void {
    this.changes.push({ rule, subject, station, measurement, active, value, at, detail })
  }

  /** The changes since the last call, oldest first. */
  takeChanges(): Change[] {
    const out = this.changes
    this.changes = []
    return out
  }

  /** The states changed since the last call, to save. */
  takeDirty(): { key: string; rule: string; subject: string; state: CondState }[] {
    const out = [...this.dirty].map((key) => {
      const [rule, subject] = key.split('\u0000') as [string, string]
      return { key, rule, subject, state: this.states.get(key)! }
    })
    this.dirty.clear()
    return out
  }

  /** The enabled rules of a kind. */
  rulesOf<K extends Rule['kind']>(kind: K): Extract<Rule, { kind: K }>[] {
    return this.rules.filter((r): r is Extract<Rule, { kind: K }> => r.kind === kind)
  }
}

const round = (x: number) => Number(x.toPrecision(6))

/** A new or edited SPC rule's state: it learns (or takes) its centre and σ again. */
function fresh(
  rule: Extract<Rule, { kind: 'spc' }>,
  measurement: Measurement | undefined,
  on: boolean,
): CondState {
  const p = rule.params
  const s: CondState = { on, rev: rule.revision, n: 0, sum: 0, z: [], calm: 0 }
  const given =
    p.source === 'fixed'
      ? { centre: p.centre!, sigma: p.sigma! }
      : p.source === 'catalog' && measurement?.limits[0]
        ? catalogSigma(measurement.limits[0])
        : undefined
  if (given) {
    s.centre = given.centre
    s.sigma = given.sigma / Math.sqrt(p.subgroup)
  } else s.base = { n: 0, sum: 0, sumsq: 0 }
  return s
}
