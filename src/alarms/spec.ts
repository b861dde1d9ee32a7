/**
 * The spec rule with hysteresis: a measurement outside its spec limits is active; it clears only
 * once back inside by the rule's deadband (absolute, in the measurement's unit), so a value
 * hovering at a limit does not raise and clear on every reading.
 */

export interface SpecLimits {
  lsl?: number | undefined
  usl?: number | undefined
}

/**
 * Whether the condition holds for `value`, given whether it held before. Entering: outside
 * [lsl, usl]. Leaving: inside [lsl + deadband, usl − deadband].
 */
export function specActive(value: number, limits: SpecLimits, deadband: number, wasActive: boolean): boolean {
  const { lsl, usl } = limits
  const outside = (lsl !== undefined && value < lsl) || (usl !== undefined && value > usl)
  if (outside) return true
  if (!wasActive) return false
  const clearLow = lsl === undefined || value >= lsl + deadband
  const clearHigh = usl === undefined || value <= usl - deadband
  return !(clearLow && clearHigh)
}
