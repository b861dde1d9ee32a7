/**
 * A catalog is checked before anything uses it: its YAML, the JSON Schema (document.ts), then the
 * rules a schema cannot say. Every problem names its place in the file as a JSON Pointer
 * (`/lines/0/stations/2/measurements/booth_temp/spec/usl: must be greater than target 22`), and
 * all of them are reported at once.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { Ajv, type ErrorObject } from 'ajv'
import { parseDocument } from 'yaml'
import { PipelineError } from '../errors/index.ts'
import {
  type CatalogDocument,
  CatalogDocument as CatalogSchema,
  type Measurement,
  type Station as StationDoc,
} from './document.ts'

export interface CatalogProblem {
  /** a JSON Pointer into the file ('' for the whole file) */
  path: string
  message: string
}

export type CatalogCheck = { ok: true; document: CatalogDocument } | { ok: false; problems: CatalogProblem[] }

const ajv = new Ajv({ allErrors: true, discriminator: true, strict: false })
const schemaCheck = ajv.compile<CatalogDocument>(CatalogSchema)

/** A topic suffix Kafka accepts (the prefix is checked with the settings). */
const TOPIC = /^[A-Za-z0-9._-]+$/

/** The problems of a document, or the document typed; `text` is the file's YAML or JSON. */
export function checkCatalogText(text: string): CatalogCheck {
  const parsed = parseDocument(text, { uniqueKeys: true })
  if (parsed.errors.length > 0) {
    return {
      ok: false,
      problems: parsed.errors.map((e) => ({
        path: '',
        message: `YAML ${e.linePos ? `line ${e.linePos[0].line} column ${e.linePos[0].col}` : ''}: ${e.message.split('\n')[0]}`,
      })),
    }
  }
  return checkCatalog(parsed.toJS())
}

/** The problems of a parsed document, or the document typed. */
export function checkCatalog(value: unknown): CatalogCheck {
  if (!schemaCheck(value)) {
    return { ok: false, problems: (schemaCheck.errors ?? []).flatMap(schemaProblem) }
  }
  const problems = ruleProblems(value)
  return problems.length > 0 ? { ok: false, problems } : { ok: true, document: value }
}

/** Reads and checks a catalog file; a bad one is CONFIG_INVALID (exit 2) listing every problem. */
export function readCatalogFile(path: string): CatalogDocument {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new PipelineError('CONFIG_INVALID', `catalog ${path} cannot be read: ${(error as Error).message}`)
  }
  const check = checkCatalogText(text)
  if (!check.ok) throw new PipelineError('CONFIG_INVALID', describeProblems(path, check.problems))
  return check.document
}

export function describeProblems(source: string, problems: CatalogProblem[]): string {
  const lines = problems.map((p) => `  ${p.path || '/'}: ${p.message}`)
  return `catalog ${source} is invalid (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines.join('\n')}`
}

function schemaProblem(e: ErrorObject): CatalogProblem[] {
  const path = e.instancePath
  switch (e.keyword) {
    case 'additionalProperties':
      return [
        { path, message: `unknown key "${(e.params as { additionalProperty: string }).additionalProperty}"` },
      ]
    case 'required':
      return [{ path, message: `"${(e.params as { missingProperty: string }).missingProperty}" is required` }]
    case 'propertyNames':
      return []
    case 'pattern':
      return [
        {
          path,
          message: `must match ${(e.params as { pattern: string }).pattern} (lower-case letters, digits, _)`,
        },
      ]
    case 'const':
      return [
        { path, message: `must be ${JSON.stringify((e.params as { allowedValue: unknown }).allowedValue)}` },
      ]
    case 'discriminator':
      return [{ path, message: 'type must be one of number, integer, enum, boolean' }]
    default:
      return [{ path, message: e.message ?? e.keyword }]
  }
}

const at = (...parts: (string | number)[]) =>
  `/${parts.map((p) => String(p).replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`

/** What a schema cannot say: order of limits, unique ids, references, legal topics, known units. */
function ruleProblems(doc: CatalogDocument): CatalogProblem[] {
  const problems: CatalogProblem[] = []
  const add = (path: string, message: string) => problems.push({ path, message })
  const seen = (kind: string) => {
    const first = new Map<string, string>()
    return (id: string, path: string) => {
      const before = first.get(id)
      if (before) add(path, `${kind} "${id}" is already defined at ${before}`)
      else first.set(id, path)
    }
  }
  const area = seen('area')
  for (const [i, a] of doc.areas.entries()) area(a.id, at('areas', i, 'id'))
  const areaIds = new Set(doc.areas.map((a) => a.id))
  const line = seen('line')
  const station = seen('station')
  const sensor = seen('sensor')
  // Kafka treats '.' and '_' alike in metric names and refuses topics that collide so.
  const topic = seen('topic (with "." and "_" alike)')
  for (const [li, l] of doc.lines.entries()) {
    line(l.id, at('lines', li, 'id'))
    if (!areaIds.has(l.area))
      add(at('lines', li, 'area'), `no area "${l.area}"; the areas: ${[...areaIds].join(', ')}`)
    for (const [si, s] of l.stations.entries()) {
      const here = (...p: (string | number)[]) => at('lines', li, 'stations', si, ...p)
      station(s.id, here('id'))
      const t = s.topic ?? s.id
      if (!TOPIC.test(t) || t === '.' || t === '..')
        add(here('topic'), `"${t}" is not a legal Kafka topic name (letters, digits, ".", "_", "-")`)
      topic(t.replaceAll('.', '_'), here(s.topic === undefined ? 'id' : 'topic'))
      for (const [i, sn] of (s.sensors ?? []).entries()) sensor(sn.id, here('sensors', i, 'id'))
      if (s.source) sourceProblems(s, (...p) => here('source', ...p), add)
      const roles = new Map<string, string>()
      const columns = new Map<string, string>()
      for (const [name, m] of Object.entries(s.measurements)) {
        const path = (...p: (string | number)[]) => here('measurements', name, ...p)
        measurementProblems(m, path, add)
        if (m.role) {
          const other = roles.get(m.role)
          if (other) add(path('role'), `only one measurement of a station may be ${m.role} (${other} is)`)
          roles.set(m.role, name)
        }
        const column = biColumn(name, m)
        const other = columns.get(column)
        if (other) add(path('column'), `BI column "${column}" is also ${other}'s; set "column"`)
        columns.set(column, name)
      }
    }
  }
  return problems
}

type Add = (path: string, message: string) => void

/** A source names only its station's measurements and sensors, and an OPC UA sensor feeds all of them. */
function sourceProblems(s: StationDoc, path: (...p: (string | number)[]) => string, add: Add): void {
  const names = Object.keys(s.measurements)
  const known = (m: string) => names.includes(m)
  const source = s.source!
  if (source.type === 'sparkplug')
    for (const m of Object.keys(source.metrics ?? {}).filter((x) => !known(x)))
      add(
        path('metrics', m),
        `no measurement "${m}" in station ${s.id}; its measurements: ${names.join(', ')}`,
      )
  if (source.type !== 'opcua') return
  const listed = s.sensors?.map((x) => x.id)
  for (const [i, sensor] of source.sensors.entries()) {
    if (listed && !listed.includes(sensor.id))
      add(
        path('sensors', i, 'id'),
        `"${sensor.id}" is not one of the station's sensors: ${listed.join(', ')}`,
      )
    for (const m of Object.keys(sensor.nodes).filter((x) => !known(x)))
      add(
        path('sensors', i, 'nodes', m),
        `no measurement "${m}" in station ${s.id}; its measurements: ${names.join(', ')}`,
      )
    const missing = names.filter((m) => !(m in sensor.nodes))
    if (missing.length > 0)
      add(
        path('sensors', i, 'nodes'),
        `a reading carries every measurement: give a node for ${missing.join(', ')}`,
      )
  }
}

function measurementProblems(m: Measurement, path: (...p: (string | number)[]) => string, add: Add): void {
  if (m.role === 'inspection_result' && (m.type !== 'enum' || m.pass === undefined))
    add(path('role'), 'an inspection_result is an enum with a "pass" value')
  if (m.role === 'defect_count' && m.type !== 'integer') add(path('role'), 'a defect_count is an integer')
  if (m.role === 'inspection_result' && m.type === 'enum')
    for (const v of m.values.filter((x) => x === 't' || x === 'defects'))
      add(path('values'), `"${v}" cannot be an inspection result: /quality/summary's series uses that name`)
  if (m.type === 'boolean') return
  if (m.type === 'enum') {
    const dup = m.values.find((v, i) => m.values.indexOf(v) !== i)
    if (dup !== undefined) add(path('values'), `"${dup}" is listed twice`)
    if (m.pass !== undefined && !m.values.includes(m.pass))
      add(path('pass'), `"${m.pass}" is not one of the values (${m.values.join(', ')})`)
    const w = m.simulation?.weights
    if (w && w.length !== m.values.length)
      add(path('simulation', 'weights'), `has ${w.length} weights for ${m.values.length} values`)
    else if (w && !(w.reduce((a, b) => a + b, 0) > 0)) add(path('simulation', 'weights'), 'must not all be 0')
    return
  }
  const { min, max } = m.range
  if (!(min < max)) add(path('range', 'max'), `must be greater than min ${min}`)
  const unit = ucumProblem(m.unit)
  if (unit) add(path('unit'), unit)
  const spec = m.spec
  if (spec) {
    const { lsl, target, usl } = spec
    if (lsl === undefined && usl === undefined) add(path('spec'), 'needs lsl, usl or both')
    if (lsl !== undefined && usl !== undefined && !(lsl < usl))
      add(path('spec', 'usl'), `must be greater than lsl ${lsl}`)
    if (target !== undefined) {
      if (lsl !== undefined && !(lsl < target)) add(path('spec', 'target'), `must be greater than lsl ${lsl}`)
      if (usl !== undefined && !(target < usl))
        add(path('spec', 'usl'), `must be greater than target ${target}`)
    }
    for (const key of ['lsl', 'target', 'usl'] as const) {
      const v = spec[key]
      if (v !== undefined && (v < min || v > max))
        add(path('spec', key), `${v} is outside the range ${min}…${max}`)
    }
  }
  const nominal = m.simulation?.nominal
  if (nominal !== undefined && (nominal < min || nominal > max))
    add(path('simulation', 'nominal'), `${nominal} is outside the range ${min}…${max}`)
}

interface Ucum {
  UcumLhcUtils: {
    getInstance(): { validateUnitString(code: string, suggest?: boolean): { status: string; msg: string[] } }
  }
}
let ucum: ReturnType<Ucum['UcumLhcUtils']['getInstance']> | undefined

/** Why a unit code is not UCUM, or undefined when it is (the NLM's reference implementation). */
function ucumProblem(code: string): string | undefined {
  // Loaded on the first number to check: a megabyte of unit tables the ETL and the API never need.
  ucum ??= (createRequire(import.meta.url)('@lhncbc/ucum-lhc') as Ucum).UcumLhcUtils.getInstance()
  const r = ucum.validateUnitString(code, true)
  if (r.status === 'valid') return undefined
  return `"${code}" is not a UCUM unit code${r.msg.length ? `: ${r.msg.join(' ').replace(/\s+/g, ' ').trim()}` : ''} (e.g. N.m, Cel, kA, %, [mil_us], {count})`
}

/** Column-name suffixes for symbols that are not plain ASCII. */
const TRANSLIT: [RegExp, string][] = [
  [/%/g, '_pct_'],
  [/°/g, 'deg'],
  [/Ω/g, 'ohm'],
  [/[µμ]/g, 'u'],
  [/[·.]/g, ''],
  [/\//g, '_per_'],
  [/²/g, '2'],
  [/³/g, '3'],
]

/**
 * A measurement's column in its station's BI view: `column` if set, else its name with its unit
 * symbol (`bolt_torque_nm`, `module_temp_degc`); a count in `{annotation}` units has none.
 */
export function biColumn(name: string, m: Measurement): string {
  if (m.column) return m.column
  if (m.type === 'enum' || m.type === 'boolean' || m.unit.startsWith('{') || m.unit === '1') return name
  let suffix = m.symbol ?? m.unit
  for (const [from, to] of TRANSLIT) suffix = suffix.replace(from, to)
  suffix = suffix
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '')
  return suffix && !name.endsWith(`_${suffix}`) ? `${name}_${suffix}`.slice(0, 63) : name
}
