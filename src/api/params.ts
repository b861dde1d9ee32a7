import { EPOCH_PATTERN } from './schemas.ts'

const EPOCH = new RegExp(EPOCH_PATTERN)
/** RFC 3339 as the schema's `date-time` and `date` formats accept it (Ajv checked the ranges). */
const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d+)?(?:[Zz]|([+-])(\d{2}):(\d{2})))?$/

/**
 * A time parameter (`TimeParam` in schemas.ts, already validated) → a Date. Computed from its
 * parts rather than `Date.parse`, so every value the schema allows has a meaning: a leap second
 * is the next minute's first, years 0000–0099 are not shifted to the 1900s.
 */
export function parseTime(value: string | undefined): Date | undefined {
  if (value === undefined) return undefined
  if (EPOCH.test(value)) return new Date(Number(value) * 1000)
  const m = RFC3339.exec(value)
  if (!m) throw new Error(`parseTime: "${value}" passed the schema but is not a time`)
  const [, y, mo, d, h = '0', mi = '0', s = '0', frac = '', sign, oh = '0', om = '0'] = m
  const date = new Date(0)
  date.setUTCFullYear(Number(y), Number(mo) - 1, Number(d))
  const offsetMin = (sign === '-' ? -1 : 1) * (Number(oh) * 60 + Number(om))
  date.setUTCHours(Number(h), Number(mi) - offsetMin, Number(s), Math.floor(Number(`0${frac}`) * 1000))
  return date
}

/**
 * The window [from, to) of a request: `to` defaults to now, `from` to `defaultSpanMs` before it.
 * A window with `from` at or after `to` is empty, as /sensor-data's since/until: its answer has
 * nothing in it, and its bounds say why.
 */
export function windowOf(q: { from?: string; to?: string }, defaultSpanMs: number): { from: Date; to: Date } {
  const to = parseTime(q.to) ?? new Date()
  const from = parseTime(q.from) ?? new Date(to.getTime() - defaultSpanMs)
  return { from, to }
}
