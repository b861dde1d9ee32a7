import { problem } from './problems.ts'

/** A parameter that passed the schema but not a semantic check: rendered as a 400 problem. */
export class BadParameter extends Error {
  constructor(
    readonly parameter: string,
    message: string,
  ) {
    super(`${parameter}: ${message}`)
  }

  toProblem(instance: string) {
    return problem('BAD_PARAMETER', this.message, {
      errors: [{ parameter: this.parameter, message: this.message }],
      instance,
    })
  }
}

const EPOCH = /^\d{1,11}(\.\d{1,6})?$/
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

/** ISO 8601 or epoch seconds → a Date; anything else is a 400 naming the parameter. */
export function parseTime(parameter: string, value: string | undefined): Date | undefined {
  if (value === undefined) return undefined
  let ms: number
  if (EPOCH.test(value)) ms = Number(value) * 1000
  else if (ISO.test(value)) ms = Date.parse(value)
  else
    throw new BadParameter(
      parameter,
      `"${value.slice(0, 40)}" is not ISO 8601 (2026-01-31T08:00:00Z) or epoch seconds`,
    )
  if (!Number.isFinite(ms) || ms < 0 || ms > 253_402_300_799_000) {
    throw new BadParameter(parameter, `"${value.slice(0, 40)}" is not a valid date`)
  }
  return new Date(ms)
}

/** The OpenAPI description shared by every time parameter. */
export const timeParam = {
  type: 'string',
  maxLength: 40,
  description: 'ISO 8601 (2026-01-31T08:00:00Z) or epoch seconds',
} as const

/** The window [from, to) of a request: `to` defaults to now, `from` to `defaultSpanMs` before it. */
export function windowOf(q: { from?: string; to?: string }, defaultSpanMs: number): { from: Date; to: Date } {
  const to = parseTime('to', q.to) ?? new Date()
  const from = parseTime('from', q.from) ?? new Date(to.getTime() - defaultSpanMs)
  if (from >= to) throw new BadParameter('from', 'must be before `to`')
  return { from, to }
}
