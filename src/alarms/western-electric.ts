/**
 * The Western Electric rules (Western Electric's Statistical Quality Control Handbook, 1956) on a
 * measurement's subgroup series: each point is a subgroup's mean, expressed as z = (x − centre) / σ
 * with the centre and σ of a baseline window or the catalog's target and limits (docs/alarms.md).
 * A rule fires at a point when the run it describes ends at that point.
 */

export const WE_RULES = {
  WE1: 'one point beyond 3σ',
  WE2: '2 of 3 consecutive points beyond 2σ on one side',
  WE3: '4 of 5 consecutive points beyond 1σ on one side',
  WE4: '8 consecutive points on one side of the centre',
} as const
export type WeRule = keyof typeof WE_RULES
export const WE_RULE_NAMES = Object.keys(WE_RULES) as WeRule[]

/** The longest run a rule looks at. */
const WINDOW = 8

/** `n` of the last `of` points beyond `limit` on one side (above or below the centre). */
function nOf(z: readonly number[], n: number, of: number, limit: number): boolean {
  if (z.length < n) return false
  const last = z.slice(-of)
  const above = last.filter((v) => v > limit).length
  const below = last.filter((v) => v < -limit).length
  // The newest point is part of the run: a run that ended earlier fired then.
  const newest = z[z.length - 1]!
  return (above >= n && newest > limit) || (below >= n && newest < -limit)
}

/** The rules (of `enabled`) that fire at the newest point of `z` (its last points, oldest first). */
export function firingRules(z: readonly number[], enabled: readonly WeRule[] = WE_RULE_NAMES): WeRule[] {
  const fired: WeRule[] = []
  const newest = z[z.length - 1]
  if (newest === undefined || !Number.isFinite(newest)) return fired
  for (const rule of enabled) {
    if (rule === 'WE1' && Math.abs(newest) > 3) fired.push(rule)
    if (rule === 'WE2' && nOf(z, 2, 3, 2)) fired.push(rule)
    if (rule === 'WE3' && nOf(z, 4, 5, 1)) fired.push(rule)
    if (rule === 'WE4' && z.length >= 8) {
      const last = z.slice(-8)
      if (last.every((v) => v > 0) || last.every((v) => v < 0)) fired.push(rule)
    }
  }
  return fired
}

/** A measurement's series as the evaluator keeps it: its last points, as z-scores. */
export class SpcSeries {
  private readonly z: number[] = []

  constructor(
    private readonly centre: number,
    private readonly sigma: number,
  ) {
    if (!(sigma > 0)) throw new Error(`σ must be positive, got ${sigma}`)
  }

  /** Adds a subgroup mean; answers the rules of `enabled` that fire at it. */
  push(mean: number, enabled: readonly WeRule[] = WE_RULE_NAMES): WeRule[] {
    this.z.push((mean - this.centre) / this.sigma)
    if (this.z.length > WINDOW) this.z.shift()
    return firingRules(this.z, enabled)
  }

  /** The last points, oldest first, as z-scores (for the state PostgreSQL keeps). */
  get points(): readonly number[] {
    return this.z
  }
}
