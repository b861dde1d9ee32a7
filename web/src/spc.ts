/**
 * Statistical process control for an individuals (X) chart, as pure functions of the readings.
 *
 * The process sigma is estimated from the average moving range (MR̄ / d2, d2 = 1.128 for ranges
 * of two consecutive readings), not from the overall standard deviation: a single spike or a
 * slow drift inflates the overall deviation and would widen the limits that should catch it.
 * A point is out of control when it lies beyond centre ± 3σ (Western Electric rule 1).
 */

/** d2 for subgroups of 2: the expected range of two normal draws, in sigmas. */
export const D2 = 1.128

/** The lower (lsl) and upper (usl) spec limits; a one-sided spec has only one. */
export interface SpecLimits {
  min?: number | undefined
  max?: number | undefined
}

export interface IndividualsChart {
  n: number
  /** centre line */
  mean: number
  /** average moving range */
  mrBar: number
  /** estimated within-process sigma, MR̄ / d2 */
  sigma: number
  ucl: number
  lcl: number
  /** indices (into the input) of the points beyond the control limits */
  outOfControl: number[]
  /** capability against the spec limits; null without spec limits or when sigma is 0 */
  cp: number | null
  cpk: number | null
}

export function mean(xs: readonly number[]): number {
  let sum = 0
  for (const x of xs) sum += x
  return sum / xs.length
}

/** |x[i] − x[i−1]| for each consecutive pair. */
export function movingRanges(xs: readonly number[]): number[] {
  const out: number[] = []
  for (let i = 1; i < xs.length; i++) out.push(Math.abs(xs[i]! - xs[i - 1]!))
  return out
}

/**
 * Cp = spec width / 6σ (two-sided specs only); Cpk = distance from the mean to the nearer spec
 * limit / 3σ, of the one limit a one-sided spec has.
 */
export function capability(
  centre: number,
  sigma: number,
  spec: SpecLimits,
): { cp: number | null; cpk: number | null } {
  const { min, max } = spec
  if (!(sigma > 0) || (min === undefined && max === undefined)) return { cp: null, cpk: null }
  const margins = [max === undefined ? null : max - centre, min === undefined ? null : centre - min]
  return {
    cp: min !== undefined && max !== undefined ? (max - min) / (6 * sigma) : null,
    cpk: Math.min(...margins.filter((m) => m !== null)) / (3 * sigma),
  }
}

/** The chart of `xs` (oldest first); null with fewer than two readings (no moving range). */
export function individualsChart(xs: readonly number[], spec?: SpecLimits): IndividualsChart | null {
  if (xs.length < 2) return null
  const centre = mean(xs)
  const mrBar = mean(movingRanges(xs))
  const sigma = mrBar / D2
  const ucl = centre + 3 * sigma
  const lcl = centre - 3 * sigma
  const outOfControl: number[] = []
  xs.forEach((x, i) => {
    if (x > ucl || x < lcl) outOfControl.push(i)
  })
  const { cp, cpk } = spec ? capability(centre, sigma, spec) : { cp: null, cpk: null }
  return { n: xs.length, mean: centre, mrBar, sigma, ucl, lcl, outOfControl, cp, cpk }
}
