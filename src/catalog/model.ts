import type {
  CatalogDocument,
  Measurement as MeasurementDoc,
  Source,
  Station as StationDoc,
} from './document.ts'
import { biColumn } from './validate.ts'

/** Spec limits from a moment on (`from`: epoch seconds; the first version holds from the start). */
export interface SpecVersion {
  from: number
  lsl?: number | undefined
  target?: number | undefined
  usl?: number | undefined
}

/** A measurement as the pipeline uses it: the file's definition, its name, BI column and limits. */
export type Measurement = MeasurementDoc & {
  name: string
  column: string
  /** number or integer: rounded, range-checked, rolled up as statistics */
  numeric: boolean
  /** its spec limits over time, newest first (empty without spec limits) */
  limits: readonly SpecVersion[]
}
export type NumericMeasurement = Extract<Measurement, { type: 'number' | 'integer' }>

export interface Station {
  id: string
  name: string
  description: string
  line: { id: string; name: string }
  area: { id: string; name: string }
  /** its topic after the prefix */
  topic: string
  /** the sensors it has, when the catalog lists them (a reading from another is a dead letter) */
  sensors: readonly string[] | undefined
  /** where its readings come from when a device sends them (docs/devices.md); none: the simulator */
  source?: Source | undefined
  measurements: readonly Measurement[]
  /** when it left the catalog: it takes no more readings, and its history stays served */
  retired?: { version: number; at: string; atSec: number } | undefined
}

/** What the database keeps besides the applied document: retired stations and the limits' history. */
export interface CatalogHistory {
  version: number
  appliedAt?: string | undefined
  retired?: {
    station: StationDoc
    line: Station['line']
    area: Station['area']
    version: number
    at: string
  }[]
  /** every spec version, any order: `${station}/${measurement}` → versions */
  limits?: ReadonlyMap<string, SpecVersion[]>
}

/**
 * The plant as the pipeline sees it: a validated catalog document, compiled once for lookups
 * (the ETL asks it per reading), with the stations retired before it and the history of every
 * spec limit. Immutable: a new version is a new Catalog.
 */
export class Catalog {
  readonly version: number
  readonly appliedAt: string | undefined
  readonly document: CatalogDocument
  /** the stations that take readings, in file order */
  readonly stations: readonly Station[]
  /** the stations that no longer do, whose history is still served */
  readonly retired: readonly Station[]
  private readonly byId = new Map<string, Station>()
  private topics: { prefix: string; byTopic: Map<string, Station> } | undefined

  constructor(document: CatalogDocument, history: CatalogHistory = { version: 0 }) {
    this.document = document
    this.version = history.version
    this.appliedAt = history.appliedAt
    const areas = new Map(document.areas.map((a) => [a.id, { id: a.id, name: a.name }]))
    const limits = history.limits ?? new Map()
    this.stations = document.lines.flatMap((l) =>
      l.stations.map((s) => compile(s, { id: l.id, name: l.name }, areas.get(l.area)!, limits)),
    )
    this.retired = (history.retired ?? [])
      .filter((r) => !this.stations.some((s) => s.id === r.station.id))
      .map((r) => ({
        ...compile(r.station, r.line, r.area, limits),
        retired: { version: r.version, at: r.at, atSec: Date.parse(r.at) / 1000 },
      }))
    for (const s of [...this.retired, ...this.stations]) this.byId.set(s.id, s)
  }

  /** A station that takes readings, or undefined. */
  station(id: string): Station | undefined {
    const s = this.byId.get(id)
    return s?.retired ? undefined : s
  }

  /** A station with history: taking readings or retired. */
  known(id: string): Station | undefined {
    return this.byId.get(id)
  }

  /** Every station with history, active first. */
  get all(): readonly Station[] {
    return [...this.stations, ...this.retired]
  }

  topicOf(station: Station, prefix: string): string {
    return `${prefix}${station.topic}`
  }

  /** The active stations' topics. */
  topicsOf(prefix: string): string[] {
    return this.stations.map((s) => this.topicOf(s, prefix))
  }

  /** The station a topic carries (an active one, or else a retired one), or undefined. */
  stationForTopic(topic: string, prefix: string): Station | undefined {
    if (this.topics?.prefix !== prefix) {
      const byTopic = new Map([...this.retired, ...this.stations].map((s) => [this.topicOf(s, prefix), s]))
      this.topics = { prefix, byTopic }
    }
    return this.topics.byTopic.get(topic)
  }

  /** The inspection station: its outcome measurement, the passing value, its defects measurement. */
  inspection(stationId?: string): Inspection | undefined {
    for (const s of this.all) {
      if (stationId !== undefined && s.id !== stationId) continue
      const result = s.measurements.find((m) => m.role === 'inspection_result')
      if (result?.type !== 'enum' || result.pass === undefined) continue
      const defects = s.measurements.find((m) => m.role === 'defect_count')?.name
      return { station: s.id, field: result.name, results: result.values, pass: result.pass, defects }
    }
    return undefined
  }
}

export interface Inspection {
  station: string
  field: string
  results: readonly string[]
  pass: string
  defects: string | undefined
}

/** The spec limits in force at `tsSec` (the oldest version before the first). */
export function specAt(m: Measurement, tsSec: number): SpecVersion | undefined {
  const { limits } = m
  for (const v of limits) if (v.from <= tsSec) return v
  return limits[limits.length - 1]
}

function compile(
  s: StationDoc,
  line: Station['line'],
  area: Station['area'],
  history: ReadonlyMap<string, SpecVersion[]>,
): Station {
  return {
    id: s.id,
    name: s.name,
    description: s.description ?? '',
    line,
    area,
    topic: s.topic ?? s.id,
    sensors: s.sensors?.map((x) => x.id),
    source: s.source,
    measurements: Object.entries(s.measurements).map(([name, m]) => ({
      ...m,
      name,
      column: biColumn(name, m),
      numeric: m.type === 'number' || m.type === 'integer',
      limits: limitsOf(m, history.get(`${s.id}/${name}`)),
    })),
  }
}

/** The stored history, newest first; without one, the file's limits from the start. */
function limitsOf(m: MeasurementDoc, stored: SpecVersion[] | undefined): SpecVersion[] {
  if (stored && stored.length > 0) return [...stored].sort((a, b) => b.from - a.from)
  if ((m.type === 'number' || m.type === 'integer') && m.spec)
    return [{ from: Number.NEGATIVE_INFINITY, ...m.spec }]
  return []
}
