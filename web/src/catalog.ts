/**
 * What the panels read from the catalog (GET /stations): the numeric measurements, the inspection
 * the quality panel shows, the measurement charted by default, and the spec limits in force at a
 * time. The catalog is data applied while the page is open: nothing in the dashboard names a
 * station, a measurement or an inspection result.
 */
import type { EnumField, Field, Limits, NumericField, Station } from './api.ts'
import { h, label } from './dom.ts'

export const isNumeric = (f: Field): f is NumericField => f.kind === 'number' || f.kind === 'integer'

export const numericFields = (s: Station): NumericField[] => s.fields.filter(isNumeric)

/** A measurement as the selectors name it: `station.field` (neither id may hold a dot). */
export const measurementKey = (station: string, field: string): string => `${station}.${field}`

export function findMeasurement(
  stations: readonly Station[],
  key: string,
): { station: Station; field: NumericField } | null {
  for (const station of stations) {
    for (const field of numericFields(station)) {
      if (measurementKey(station.name, field.name) === key) return { station, field }
    }
  }
  return null
}

/**
 * The measurement charted until one is chosen: the first measurement with spec limits of the
 * first station taking readings that has one — where the line starts. Measurements with a quality
 * role are left to the quality panel; without any spec limits, the first numeric measurement.
 */
export function defaultMeasurement(stations: readonly Station[]): string | null {
  const active = stations.filter((s) => s.status === 'active')
  const pick = (ok: (f: NumericField) => boolean) => {
    for (const s of active) {
      const f = numericFields(s).find(ok)
      if (f) return measurementKey(s.name, f.name)
    }
    return null
  }
  return pick((f) => f.spec !== undefined && f.role === undefined) ?? pick(() => true)
}

/**
 * Fills a measurement selector from the catalog, one group per station (retired ones marked, their
 * history is still served). The selection survives a new catalog version when its measurement is
 * still there; otherwise it falls back to the default. Returns whether it changed.
 */
export function fillMeasurements(select: HTMLSelectElement, stations: readonly Station[]): boolean {
  const before = select.value
  const groups = stations
    .filter((s) => numericFields(s).length > 0)
    .map((s) =>
      h(
        'optgroup',
        { label: s.status === 'retired' ? `${s.title} (retired)` : s.title },
        ...numericFields(s).map((f) => h('option', { value: measurementKey(s.name, f.name) }, label(f.name))),
      ),
    )
  select.replaceChildren(...groups)
  select.value = findMeasurement(stations, before) ? before : (defaultMeasurement(stations) ?? '')
  return select.value !== before
}

/** The inspection the quality panel shows: its station, the result field and the pass value. */
export interface Inspection {
  station: Station
  field: EnumField & { pass: string }
}

/** The first station with an inspection result that has a pass value (as the API's default). */
export function inspectionOf(stations: readonly Station[]): Inspection | null {
  for (const station of stations) {
    const field = station.fields.find(
      (f): f is EnumField & { pass: string } =>
        f.kind === 'enum' && f.role === 'inspection_result' && f.pass !== undefined,
    )
    if (field) return { station, field }
  }
  return null
}

/**
 * The spec limits in force at `tSec` (epoch seconds), from the `limits` of GET /stats/timeseries
 * (oldest first): the newest that starts at or before it; before the first, the first, as the API
 * judges a reading.
 */
export function limitsAt(limits: readonly Limits[], tSec: number): Limits | undefined {
  let found = limits[0]
  for (const l of limits) {
    if (l.from === null || Date.parse(l.from) / 1000 <= tSec) found = l
    else break
  }
  return found
}

/** "1.000–1.300", "≥ 500", "≤ 3", or '' without spec limits. */
export function specText(
  lsl: number | null | undefined,
  usl: number | null | undefined,
  fmt: (v: number) => string,
) {
  if (lsl != null && usl != null) return `${fmt(lsl)}–${fmt(usl)}`
  if (lsl != null) return `≥ ${fmt(lsl)}`
  if (usl != null) return `≤ ${fmt(usl)}`
  return ''
}
