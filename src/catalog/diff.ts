import type { Measurement as MeasurementDoc } from './document.ts'
import type { Catalog, Station } from './model.ts'

/** What applying a catalog changes: `evf catalog apply` prints it, then applies it. */
export interface CatalogDiff {
  /** stations new to the plant, or back after being retired */
  added: string[]
  /** stations that leave: their history stays */
  retired: string[]
  /** per station that stays, what changed in words */
  changed: { station: string; changes: string[] }[]
  /** measurements whose spec limits are new or differ: a new limits version from now */
  limits: { station: string; measurement: string; lsl?: number; target?: number; usl?: number }[]
  /** anything else of the document (site, areas, lines' names) */
  other: string[]
}

export const isEmptyDiff = (d: CatalogDiff): boolean =>
  d.added.length + d.retired.length + d.changed.length + d.limits.length + d.other.length === 0

/** `before` is the applied catalog (undefined: none yet), `after` the one to apply. */
export function diffCatalogs(before: Catalog | undefined, after: Catalog): CatalogDiff {
  const diff: CatalogDiff = { added: [], retired: [], changed: [], limits: [], other: [] }
  for (const s of after.stations) {
    const old = before?.station(s.id)
    if (!old) diff.added.push(s.id)
    const changes = old ? stationChanges(old, s) : []
    if (changes.length > 0) diff.changed.push({ station: s.id, changes })
    for (const m of s.measurements) {
      const spec = specOf(m)
      const was = old?.measurements.find((o) => o.name === m.name)
      if (!same(was ? specOf(was) : undefined, spec) && (spec || was))
        diff.limits.push({ station: s.id, measurement: m.name, ...spec })
    }
  }
  for (const s of before?.stations ?? []) if (!after.station(s.id)) diff.retired.push(s.id)
  if (before) {
    const { lines: _a, ...restBefore } = before.document
    const { lines: _b, ...restAfter } = after.document
    if (!same(restBefore, restAfter)) diff.other.push('site or areas')
    for (const l of after.document.lines) {
      const was = before.document.lines.find((x) => x.id === l.id)
      if (!was) diff.other.push(`line ${l.id} added`)
      else if (was.name !== l.name || was.area !== l.area) diff.other.push(`line ${l.id} renamed or moved`)
    }
  }
  return diff
}

function stationChanges(old: Station, s: Station): string[] {
  const changes: string[] = []
  for (const key of ['name', 'description', 'topic'] as const)
    if (old[key] !== s[key]) changes.push(`${key} ${JSON.stringify(old[key])} → ${JSON.stringify(s[key])}`)
  if (old.line.id !== s.line.id) changes.push(`moved from line ${old.line.id} to ${s.line.id}`)
  if (!same(old.sensors, s.sensors)) changes.push('sensors changed')
  if (!same(old.source, s.source)) changes.push('source changed')
  for (const m of s.measurements) {
    const was = old.measurements.find((o) => o.name === m.name)
    if (!was) changes.push(`measurement ${m.name} added`)
    else {
      const fields = changedFields(strip(was), strip(m))
      if (fields.length > 0) changes.push(`${m.name}: ${fields.join(', ')}`)
    }
  }
  for (const m of old.measurements)
    if (!s.measurements.some((x) => x.name === m.name)) changes.push(`measurement ${m.name} removed`)
  return changes
}

const specOf = (m: Station['measurements'][number]) => (m.numeric && 'spec' in m ? m.spec : undefined)

/** The file's definition of a compiled measurement. */
function strip(m: Station['measurements'][number]): MeasurementDoc {
  const { name: _n, column: _c, numeric: _u, limits: _l, ...doc } = m
  return doc as MeasurementDoc
}

function changedFields(a: MeasurementDoc, b: MeasurementDoc): string[] {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)])
  const out: string[] = []
  for (const k of keys) {
    const x = (a as Record<string, unknown>)[k]
    const y = (b as Record<string, unknown>)[k]
    if (!same(x, y)) out.push(`${k} ${JSON.stringify(x) ?? '(none)'} → ${JSON.stringify(y) ?? '(none)'}`)
  }
  return out
}

/** Structural equality of JSON values, key order ignored. */
export function same(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false
  if (Array.isArray(a) !== Array.isArray(b)) return false
  const ka = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined)
  const kb = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined)
  if (ka.length !== kb.length) return false
  return ka.every((k) => same((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
}
