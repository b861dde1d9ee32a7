import type { Ajv } from 'ajv'
import type { Catalog, Measurement, Station } from '../catalog/index.ts'
import { CatalogFollower, type Pool } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'

/**
 * The catalog as the API serves it, followed live (LISTEN on the catalog's channel): a station
 * applied while the API runs is a valid parameter, is listed, and has its statistics at once,
 * without a restart. Parameters that name a station or a measurement carry the `x-catalog`
 * keyword instead of a fixed `enum`: Ajv checks them against the catalog in force, and the
 * OpenAPI document gets the current `enum` when it is served.
 */
export class LiveCatalog {
  private follower: CatalogFollower | undefined
  private readonly listeners = new Set<(catalog: Catalog) => void>()
  private served: { version: number; stations: string; assets: string } | undefined

  constructor(private current: Catalog) {}

  get catalog(): Catalog {
    return this.current
  }

  /** Follows the applied catalog from now on. */
  follow(pool: Pool, log?: Logger): void {
    this.follower ??= new CatalogFollower(pool, this.current, (next) => this.set(next), log)
  }

  set(next: Catalog): void {
    this.current = next
    for (const fn of this.listeners) fn(next)
  }

  /** Calls `fn` with every new version. */
  onChange(fn: (catalog: Catalog) => void): () => void {
    this.listeners.add(fn)
    return () => this.listeners.delete(fn)
  }

  async close(): Promise<void> {
    await this.follower?.close()
  }

  /** The allowed values of an `x-catalog` parameter now. */
  allowed(kind: CatalogKeyword): string[] {
    const all = this.current.all
    if (kind === 'station') return all.map((s) => s.id)
    return [...new Set(all.flatMap((s) => s.measurements.filter((m) => m.numeric).map((m) => m.name)))]
  }

  /** `/stations` and `/assets` as JSON text, built once per version. */
  json(): { stations: string; assets: string } {
    if (this.served?.version !== this.current.version) {
      this.served = {
        version: this.current.version,
        stations: JSON.stringify(this.current.all.map(stationJson)),
        assets: JSON.stringify(assetsJson(this.current)),
      }
    }
    return this.served
  }
}

export type CatalogKeyword = 'station' | 'measurement'

/**
 * Registers `x-catalog` with Fastify's Ajv: `"x-catalog": "station"` accepts a station with
 * history (taking readings or retired), `"measurement"` a numeric measurement of one. The error
 * reads as an `enum`'s, listing what is allowed now.
 */
export function catalogKeyword(live: LiveCatalog) {
  return (ajv: Ajv): Ajv =>
    ajv.addKeyword({
      keyword: 'x-catalog',
      type: 'string',
      schemaType: 'string',
      errors: true,
      validate: function check(kind: CatalogKeyword, data: string) {
        const allowed = live.allowed(kind)
        if (allowed.includes(data)) return true
        ;(check as unknown as { errors: object[] }).errors = [
          {
            keyword: 'x-catalog',
            message: 'must be equal to one of the allowed values',
            params: { allowedValues: allowed },
          },
        ]
        return false
      },
    })
}

/** Puts the current allowed values as `enum` on every `x-catalog` schema of a document, in place. */
export function withCatalogEnums(doc: unknown, live: LiveCatalog): void {
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n)
      return
    }
    if (typeof node !== 'object' || node === null) return
    const o = node as Record<string, unknown>
    const kind = o['x-catalog']
    if (kind === 'station' || kind === 'measurement') o.enum = live.allowed(kind)
    for (const v of Object.values(o)) walk(v)
  }
  walk(doc)
}

/** A station as `/stations` serves it: what a client needs to read its data (not the simulator's model). */
export function stationJson(s: Station) {
  return {
    name: s.id,
    title: s.name,
    description: s.description,
    topic_suffix: s.topic,
    line: s.line.id,
    area: s.area.id,
    status: s.retired ? 'retired' : 'active',
    ...(s.retired ? { retired_at: s.retired.at } : {}),
    ...(s.sensors ? { sensors: s.sensors } : {}),
    fields: s.measurements.map(measurementJson),
  }
}

function measurementJson(m: Measurement) {
  const head = { name: m.name, kind: m.type, description: m.description, ...(m.role ? { role: m.role } : {}) }
  if (m.type === 'enum') return { ...head, values: m.values, ...(m.pass ? { pass: m.pass } : {}) }
  if (m.type === 'boolean') return head
  const { lsl, target, usl } = m.spec ?? {}
  return {
    ...head,
    unit: m.symbol ?? m.unit,
    ucum: m.unit,
    precision: m.type === 'number' ? m.decimals : 0,
    plausible: { min: m.range.min, max: m.range.max },
    ...(m.spec
      ? {
          spec: {
            min: lsl ?? m.range.min,
            max: usl ?? m.range.max,
            ...(lsl !== undefined ? { lsl } : {}),
            ...(target !== undefined ? { target } : {}),
            ...(usl !== undefined ? { usl } : {}),
          },
        }
      : {}),
  }
}

/** `/assets`: the ISA-95 hierarchy, site → areas → lines → stations, retired stations marked. */
function assetsJson(c: Catalog) {
  const stationsOf = (line: string) =>
    c.all
      .filter((s) => s.line.id === line)
      .map((s) => ({
        id: s.id,
        name: s.name,
        status: s.retired ? 'retired' : 'active',
        topic_suffix: s.topic,
        measurements: s.measurements.map((m) => m.name),
      }))
  const lines = new Map<string, { id: string; name: string; area: string }>()
  for (const l of c.document.lines) lines.set(l.id, { id: l.id, name: l.name, area: l.area })
  for (const s of c.retired) if (!lines.has(s.line.id)) lines.set(s.line.id, { ...s.line, area: s.area.id })
  const areas = new Map(c.document.areas.map((a) => [a.id, { id: a.id, name: a.name }]))
  for (const s of c.retired) if (!areas.has(s.area.id)) areas.set(s.area.id, s.area)
  return {
    version: c.version,
    applied_at: c.appliedAt ?? null,
    site: c.document.site,
    areas: [...areas.values()].map((a) => ({
      ...a,
      lines: [...lines.values()]
        .filter((l) => l.area === a.id)
        .map((l) => ({ id: l.id, name: l.name, stations: stationsOf(l.id) })),
    })),
  }
}
