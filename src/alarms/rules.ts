/**
 * Alarm rules (docs/alarms.md): the four kinds, their parameters checked with one schema for the
 * CLI, the API and the evaluator, and the defaults made from the catalog. Pure.
 */
import { z } from 'zod'
import type { Catalog, NumericMeasurement } from '../catalog/index.ts'
import type { NewRule } from '../db/index.ts'
import { SEVERITIES } from './routing.ts'
import { WE_RULE_NAMES } from './western-electric.ts'

export const RULE_KINDS = ['spec', 'spc', 'stale', 'pipeline'] as const
export type RuleKind = (typeof RULE_KINDS)[number]
export const PIPELINE_CHECKS = ['etl-stalled', 'kafka-node-down', 'dead-letter-rate'] as const
export type PipelineCheck = (typeof PIPELINE_CHECKS)[number]

const we = z.enum(WE_RULE_NAMES as [string, ...string[]])

export const SpcParams = z
  .object({
    /** the Western Electric rules switched on */
    we: z
      .array(we)
      .min(1)
      .default([...WE_RULE_NAMES]),
    /** readings per subgroup: each point of the series is the mean of this many */
    subgroup: z.number().int().min(1).max(100).default(5),
    /** centre and σ: learned from the first `baseline` subgroups, the catalog's spec, or given */
    source: z.enum(['baseline', 'catalog', 'fixed']).default('baseline'),
    baseline: z.number().int().min(5).max(10_000).default(25),
    /** with source `fixed`: the centre and the σ of one reading */
    centre: z.number().optional(),
    sigma: z.number().positive().optional(),
    /** hysteresis: in-control subgroups in a row before the condition clears */
    clear_after: z.number().int().min(1).max(1000).default(5),
  })
  .strict()
  .refine((p) => p.source !== 'fixed' || (p.centre !== undefined && p.sigma !== undefined), {
    message: 'source "fixed" needs centre and sigma',
  })
export type SpcParams = z.infer<typeof SpcParams>

export const StaleParams = z
  .object({
    /** silent for longer than this many of the sensor's usual intervals */
    intervals: z.number().min(1).max(1000).default(5),
    /** and at least this long, in ms */
    min_silent_ms: z.number().int().min(100).default(10_000),
  })
  .strict()
export type StaleParams = z.infer<typeof StaleParams>

export const PipelineParams = z
  .object({
    check: z.enum(PIPELINE_CHECKS),
    /** dead-letter-rate: dead letters per minute above which it is active */
    threshold: z.number().min(0).default(10),
  })
  .strict()
export type PipelineParams = z.infer<typeof PipelineParams>

export const SpecParams = z
  .object({
    /**
     * off-delay: back inside (by the deadband), the condition clears only once its readings have
     * stayed inside this long (ms of reading time); an outside reading meanwhile starts it again
     */
    clear_ms: z.number().int().min(0).max(3_600_000).default(0),
  })
  .strict()
export type SpecParams = z.infer<typeof SpecParams>

/**
 * The catalog's spec rules' off-delay: a station's sensors that spike now and then keep one alarm
 * raised instead of raising and clearing it at each spike (ISA-18.2 calls such an alarm chattering,
 * and an off-delay is its remedy). At 35,000 readings/s the simulator's 1 % of faults raised and
 * cleared each spec alarm about 80 times a second: 700 alarm events a second.
 */
export const CATALOG_SPEC_CLEAR_MS = 10_000

const PARAMS = { spec: SpecParams, spc: SpcParams, stale: StaleParams, pipeline: PipelineParams } as const

/** A rule as the evaluator uses it: its row, with parameters parsed. */
export type Rule =
  | (Base & { kind: 'spec'; station: string; measurement: string; params: SpecParams })
  | (Base & { kind: 'spc'; station: string; measurement: string; params: SpcParams })
  | (Base & { kind: 'stale'; station: string; measurement: null; params: StaleParams })
  | (Base & { kind: 'pipeline'; station: null; measurement: null; params: PipelineParams })
interface Base {
  id: string
  severity: (typeof SEVERITIES)[number]
  forMs: number
  deadband: number
  enabled: boolean
  /** changes when the rule is edited: a learned SPC baseline is learned again */
  revision: string
}

/** A rule as people write it (CLI, API): checked, with defaults filled in. */
export const RuleInput = z
  .object({
    id: z
      .string()
      .regex(/^[A-Za-z0-9_.:-]{1,120}$/, 'letters, digits and _ . : - (at most 120)')
      .optional(),
    kind: z.enum(RULE_KINDS),
    station: z.string().min(1).nullish(),
    measurement: z.string().min(1).nullish(),
    severity: z.enum(SEVERITIES).default('high'),
    for_ms: z.number().int().min(0).default(0),
    deadband: z.number().min(0).default(0),
    params: z.record(z.string(), z.unknown()).default({}),
    enabled: z.boolean().default(true),
  })
  .strict()
export type RuleInput = z.input<typeof RuleInput>

/** A problem with a rule: where, and what. */
export class RuleError extends Error {}

/**
 * Checks a rule against its kind's schema and the catalog (its station and measurement exist and
 * are numeric; a stale rule names a station). Answers the row to store, or throws a RuleError that
 * says every problem.
 */
export function checkRule(input: unknown, catalog: Catalog): NewRule {
  const parsed = RuleInput.safeParse(input)
  if (!parsed.success) throw new RuleError(issues(parsed.error, ''))
  const r = parsed.data
  const params = PARAMS[r.kind].safeParse(r.params)
  if (!params.success) throw new RuleError(issues(params.error, 'params'))
  const problems: string[] = []
  const station = r.station ?? null
  const measurement = r.measurement ?? null
  if (r.kind === 'pipeline' && (station || measurement))
    problems.push('a pipeline rule has no station or measurement')
  if (r.kind === 'stale' && measurement)
    problems.push('a stale rule is about a station (all its sensors), not a measurement')
  if (r.kind !== 'pipeline') {
    const s = station === null ? undefined : catalog.station(station)
    if (!s)
      problems.push(
        `station: ${station === null ? 'required' : `"${station}" is not a station of the catalog`}`,
      )
    else if (r.kind === 'spec' || r.kind === 'spc') {
      const m = s.measurements.find((x) => x.name === measurement)
      if (!m)
        problems.push(
          `measurement: ${measurement === null ? 'required' : `"${measurement}" is not a measurement of ${s.id}`}`,
        )
      else if (!m.numeric)
        problems.push(`measurement: ${m.name} is ${m.type}; spec and SPC rules need a number`)
      else if (r.kind === 'spec' && m.limits.length === 0)
        problems.push(`measurement: ${m.name} has no spec limits in the catalog`)
    }
  }
  if (problems.length > 0) throw new RuleError(problems.join('; '))
  const id = r.id ?? [r.kind, station, measurement].filter((x) => x !== null).join(':')
  return {
    id,
    kind: r.kind,
    station,
    measurement,
    severity: r.severity,
    for_ms: r.for_ms,
    deadband: r.deadband,
    params: params.data as Record<string, unknown>,
    enabled: r.enabled,
  }
}

function issues(error: z.ZodError, prefix: string): string {
  return error.issues
    .map((i) => `${[prefix, ...i.path.map(String)].filter(Boolean).join('.') || 'rule'}: ${i.message}`)
    .join('; ')
}

/** A stored row as the evaluator uses it; a row whose parameters no longer parse is left out. */
export function ruleOf(row: {
  id: string
  kind: string
  station: string | null
  measurement: string | null
  severity: string
  for_ms: number
  deadband: number
  params: Record<string, unknown>
  enabled: boolean
  updated_at: Date
}): Rule | undefined {
  const kind = row.kind as RuleKind
  const params = PARAMS[kind]?.safeParse(row.params)
  if (!params?.success) return undefined
  return {
    id: row.id,
    kind,
    station: row.station,
    measurement: row.measurement,
    severity: row.severity as Rule['severity'],
    forMs: row.for_ms,
    deadband: row.deadband,
    enabled: row.enabled,
    revision: row.updated_at.toISOString(),
    params: params.data,
  } as Rule
}

/**
 * The rules every plant starts with, made from its catalog: a spec rule per process measurement
 * with limits (on, hysteresis 2 % of the spec width), an SPC rule per numeric measurement (off until an
 * engineer switches it on: a rule that fires by chance every few minutes is how alarms stop being
 * trusted), a stale rule per station, and the three pipeline rules.
 */
export function catalogRules(catalog: Catalog): NewRule[] {
  const out: NewRule[] = []
  for (const s of catalog.stations) {
    for (const m of s.measurements) {
      // An inspection's outcome (a role) is an event per vehicle, judged by the quality panel: an
      // alarm on each failed inspection would be noise. An operator may still add a rule on it.
      if (!m.numeric || m.role !== undefined) continue
      const spec = m.limits[0]
      if (spec && (spec.lsl !== undefined || spec.usl !== undefined)) {
        out.push({
          id: `spec:${s.id}:${m.name}`,
          kind: 'spec',
          station: s.id,
          measurement: m.name,
          severity: 'high',
          for_ms: 0,
          deadband: round(0.02 * specWidth(m as NumericMeasurement, spec)),
          params: { clear_ms: CATALOG_SPEC_CLEAR_MS },
          enabled: true,
        })
      }
      out.push({
        id: `spc:${s.id}:${m.name}`,
        kind: 'spc',
        station: s.id,
        measurement: m.name,
        severity: 'medium',
        for_ms: 0,
        deadband: 0,
        params: SpcParams.parse({}),
        enabled: false,
      })
    }
    out.push({
      id: `stale:${s.id}`,
      kind: 'stale',
      station: s.id,
      measurement: null,
      severity: 'medium',
      for_ms: 0,
      deadband: 0,
      params: StaleParams.parse({}),
      enabled: true,
    })
  }
  const pipeline: [PipelineCheck, NewRule['severity']][] = [
    ['etl-stalled', 'critical'],
    ['kafka-node-down', 'high'],
    ['dead-letter-rate', 'medium'],
  ]
  for (const [check, severity] of pipeline)
    out.push({
      id: `pipeline:${check}`,
      kind: 'pipeline',
      station: null,
      measurement: null,
      severity,
      for_ms: check === 'etl-stalled' ? 0 : 10_000,
      deadband: 0,
      params: PipelineParams.parse({ check }),
      enabled: true,
    })
  return out
}

function specWidth(
  m: NumericMeasurement,
  spec: { lsl?: number | undefined; target?: number | undefined; usl?: number | undefined },
): number {
  if (spec.lsl !== undefined && spec.usl !== undefined) return spec.usl - spec.lsl
  const target = spec.target ?? m.simulation?.nominal
  const limit = spec.lsl ?? spec.usl!
  return target === undefined ? Math.abs(limit) || 1 : 2 * Math.abs(limit - target)
}

const round = (x: number) => Number(x.toPrecision(3))

/** The centre and σ of one reading the catalog implies: the target, and the spec at ±4σ (Cpk 1.33). */
export function catalogSigma(spec: {
  lsl?: number | undefined
  target?: number | undefined
  usl?: number | undefined
}): { centre: number; sigma: number } | undefined {
  const { lsl, target, usl } = spec
  const centre = target ?? (lsl !== undefined && usl !== undefined ? (lsl + usl) / 2 : undefined)
  if (centre === undefined) return undefined
  const half = lsl !== undefined && usl !== undefined ? (usl - lsl) / 2 : Math.abs((lsl ?? usl!) - centre)
  return half > 0 ? { centre, sigma: half / 4 } : undefined
}
