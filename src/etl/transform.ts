import {
  type Catalog,
  MESSAGE_HEADERS,
  type Measurement,
  type NumericMeasurement,
  type SourceRecord,
  type Station,
  specAt,
} from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import type { SensorRow } from '../db/index.ts'
import { flatWithoutDuplicates, scanStructure } from './validate.ts'

/**
 * Why a message was dead-lettered: a closed set, documented in docs/etl.md (a test checks).
 */
export const reasonCodes = {
  EMPTY_VALUE: 'the message has no value (a tombstone or an empty payload)',
  VALUE_TOO_LARGE: 'the value is larger than etlMaxMessageBytes',
  INVALID_UTF8: 'the value is not valid UTF-8',
  INVALID_JSON: 'the value is not JSON (or is truncated)',
  NOT_AN_OBJECT: 'the value is JSON but not an object (an array, a number, a string, null)',
  DUPLICATE_KEY: 'a key appears twice in one object',
  TOO_DEEP: 'objects or arrays nested deeper than 8 levels',
  MISSING_STATION: 'no "station" field',
  UNKNOWN_STATION: '"station" is not a station of the applied catalog (never was, or was retired)',
  UNKNOWN_SENSOR: '"sensor_id" is not one of the sensors its station lists in the catalog',
  STATION_TOPIC_MISMATCH: 'the station is not the one its topic carries (each station has its topic)',
  MISSING_TIMESTAMP: 'no "timestamp" field',
  INVALID_TIMESTAMP: '"timestamp" is not a finite number of epoch seconds',
  TIMESTAMP_IN_FUTURE:
    'the reading is dated further ahead than etlFutureToleranceSec (often: milliseconds sent as seconds)',
  TIMESTAMP_TOO_OLD: 'the reading is older than etlMaxAgeDays',
  MISSING_FIELD: "a measurement of the station's catalog entry is missing",
  WRONG_TYPE:
    'a measurement has the wrong JSON type (a number as a string, a fraction where an integer is due, a non-finite number)',
  INVALID_VALUE: 'an enum measurement has a value outside its list',
  OUT_OF_PLAUSIBLE_RANGE: 'a measurement is outside what the sensor can physically report',
  UNSUPPORTED_CHARACTER: 'a string holds U+0000, which PostgreSQL cannot store',
  BAD_QUALITY:
    'its source said the value is not good (header evf-quality: an OPC UA Bad or Uncertain status code, docs/devices.md)',
} as const

export type ReasonCode = keyof typeof reasonCodes

/** What a message is checked against; `nowSec` and `catalog` are taken once per batch. */
export interface ValidationPolicy {
  catalog: Catalog
  topicPrefix: string
  nowSec: number
  maxAgeSec: number
  futureToleranceSec: number
  maxBytes: number
}

export interface Rejection {
  reasonCode: ReasonCode
  reason: string
}

export type TransformResult =
  /** `reading`: the transformed reading, parsed, for the rollups (not kept with the row) */
  { ok: true; row: SensorRow; reading: Readonly<Record<string, unknown>> } | Rejected

type Rejected = { ok: false; rejection: Rejection }

/** `\u0000` in JSON text, not preceded by an escaped backslash */
const NUL_ESCAPE = /(?<!\\)(?:\\\\)*\\u0000/

/** Reasons quote the input: keep them printable, storable (no NUL) and short. */
function printable(text: string): string {
  let out = ''
  for (const ch of text.length > 300 ? `${text.slice(0, 300)}…` : text) {
    const code = ch.charCodeAt(0)
    out += code < 0x20 || code === 0x7f ? `\\u${code.toString(16).padStart(4, '0')}` : ch
  }
  return out
}

const reject = (reasonCode: ReasonCode, reason: string): Rejected => ({
  ok: false,
  rejection: { reasonCode, reason: printable(reason) },
})

/** The policy the settings and the catalog give, at `nowMs` (taken once per batch). */
export function validationPolicy(config: Config, catalog: Catalog, nowMs: number): ValidationPolicy {
  return {
    catalog,
    topicPrefix: config.topicPrefix,
    nowSec: nowMs / 1000,
    maxAgeSec: config.etlMaxAgeDays * 86_400,
    futureToleranceSec: config.etlFutureToleranceSec,
    maxBytes: config.etlMaxMessageBytes,
  }
}

const utf8 = new TextDecoder('utf-8', { fatal: true })
const MAX_DEPTH = 8

/**
 * Validate against the station catalog, then transform as the reference DAG does: numeric
 * fields rounded to the catalog's precision, `processed_at` added. A measurement outside its
 * specification limits is kept and named in `out_of_spec` (a factory event, not bad data);
 * fields the catalog does not know are kept as they are. The ETL's hot path: each step below
 * answers a rejection or its result, without throwing.
 */
export function transformRecord(
  record: SourceRecord,
  policy: ValidationPolicy,
  processedAt: string,
): TransformResult {
  const quality = header(record, MESSAGE_HEADERS.quality)
  if (quality !== undefined) return reject('BAD_QUALITY', `its source says the value is not good: ${quality}`)
  const parsed = parseObject(record.value, policy.maxBytes)
  if (!parsed.ok) return parsed
  const reading = parsed.reading
  const station = stationOf(reading, record.topic, policy)
  if ('ok' in station) return station
  const ts = timestampOf(reading, policy)
  if (typeof ts !== 'number') return ts
  const outOfSpec = normaliseMeasurements(reading, station, ts)
  if (!Array.isArray(outOfSpec)) return outOfSpec
  if (outOfSpec.length > 0) reading.out_of_spec = outOfSpec
  reading.processed_at = processedAt
  const data = JSON.stringify(reading)
  if (NUL_ESCAPE.test(data)) {
    return reject(
      'UNSUPPORTED_CHARACTER',
      'a string holds U+0000, which PostgreSQL text and jsonb cannot store',
    )
  }
  const { topic, partition, offset } = record
  const row: SensorRow = { station: station.id, data, timestamp: ts, topic, partition, offset }
  // A device's reading (evf ingest) keeps its natural key: a redelivery of it is loaded only once.
  if (record.headers && record.headers.size > 0 && header(record, MESSAGE_HEADERS.source) !== undefined) {
    row.sensorId = typeof reading.sensor_id === 'string' ? reading.sensor_id : ''
    if (header(record, MESSAGE_HEADERS.redelivered) === '1') row.redelivered = true
  }
  return { ok: true, row, reading }
}

/** A header's value as text; undefined when the record has none of that name. */
function header(record: SourceRecord, name: string): string | undefined {
  if (!record.headers || record.headers.size === 0) return undefined
  for (const [k, v] of record.headers) if (k.toString('latin1') === name) return v ? v.toString('utf8') : ''
  return undefined
}

/** The value as a JSON object: present, not too large, UTF-8, JSON, an object, sound in structure. */
function parseObject(
  value: Buffer | null | undefined,
  maxBytes: number,
): { ok: true; reading: Record<string, unknown> } | Rejected {
  if (!value || value.length === 0) return reject('EMPTY_VALUE', 'the message has no value')
  if (value.length > maxBytes) {
    return reject('VALUE_TOO_LARGE', `value is ${value.length} bytes; at most ${maxBytes} are accepted`)
  }
  let text: string
  try {
    text = utf8.decode(value)
  } catch {
    return reject('INVALID_UTF8', 'value is not valid UTF-8')
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    return reject('INVALID_JSON', `value is not valid JSON: ${(error as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    const kind = parsed === null ? 'null' : Array.isArray(parsed) ? 'an array' : `a ${typeof parsed}`
    return reject('NOT_AN_OBJECT', `value is JSON ${kind}, expected an object`)
  }
  if (flatWithoutDuplicates(text, Object.keys(parsed).length))
    return { ok: true, reading: parsed as Record<string, unknown> }
  const structure = scanStructure(text, MAX_DEPTH)
  if (structure === 'DUPLICATE_KEY') return reject('DUPLICATE_KEY', 'a key appears twice in one object')
  if (structure === 'TOO_DEEP') return reject('TOO_DEEP', `nested deeper than ${MAX_DEPTH} levels`)
  return { ok: true, reading: parsed as Record<string, unknown> }
}

/**
 * The reading's station: in the catalog (or retired after the reading was taken: a reading still
 * on its way when its station was retired is loaded), the one its topic carries, from a sensor it
 * lists.
 */
function stationOf(
  reading: Record<string, unknown>,
  topic: string,
  policy: ValidationPolicy,
): Station | Rejected {
  const id = reading.station
  if (id === undefined) return reject('MISSING_STATION', 'field "station" is missing')
  const station = typeof id === 'string' ? policy.catalog.known(id) : undefined
  if (!station)
    return reject(
      'UNKNOWN_STATION',
      `station ${JSON.stringify(id)} is not in catalog version ${policy.catalog.version}`,
    )
  const retired = station.retired
  if (retired && !(typeof reading.timestamp === 'number' && reading.timestamp < retired.atSec)) {
    return reject(
      'UNKNOWN_STATION',
      `station "${station.id}" was retired in catalog version ${retired.version} (${retired.at})`,
    )
  }
  // Each station has its topic: a reading on another (another station's, or one the catalog does
  // not name) is refused, so a topic's readings are always its station's.
  if (policy.catalog.stationForTopic(topic, policy.topicPrefix) !== station) {
    const own = policy.catalog.topicOf(station, policy.topicPrefix)
    return reject(
      'STATION_TOPIC_MISMATCH',
      `station "${station.id}" arrived on topic ${topic}, not on its own ${own}`,
    )
  }
  const sensor = reading.sensor_id
  if (station.sensors && sensor !== undefined && !station.sensors.includes(sensor as string)) {
    return reject(
      'UNKNOWN_SENSOR',
      `sensor ${JSON.stringify(sensor)} is not one of ${station.id}'s: ${station.sensors.join(', ')}`,
    )
  }
  return station
}

/** The reading time: epoch seconds, no older than `maxAgeSec` nor more than `futureToleranceSec` ahead. */
function timestampOf(reading: Record<string, unknown>, policy: ValidationPolicy): number | Rejected {
  const ts = reading.timestamp
  if (ts === undefined) return reject('MISSING_TIMESTAMP', 'field "timestamp" is missing')
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) {
    return reject(
      'INVALID_TIMESTAMP',
      `timestamp ${JSON.stringify(ts)} is not a finite number of epoch seconds`,
    )
  }
  if (ts > policy.nowSec + policy.futureToleranceSec) {
    const hint = ts > policy.nowSec * 100 ? ' (it looks like milliseconds; epoch seconds are expected)' : ''
    return reject(
      'TIMESTAMP_IN_FUTURE',
      `timestamp ${ts} is ${Math.round(ts - policy.nowSec)} s ahead of now${hint}`,
    )
  }
  if (ts < policy.nowSec - policy.maxAgeSec) {
    return reject(
      'TIMESTAMP_TOO_OLD',
      `timestamp ${ts} is older than ${Math.round(policy.maxAgeSec / 86400)} days`,
    )
  }
  return ts
}

/**
 * Checks each of the station's measurements and rounds the numeric ones in place; answers the
 * names of those outside the spec limits in force at the reading's time, or the first rejection.
 */
function normaliseMeasurements(
  reading: Record<string, unknown>,
  station: Station,
  ts: number,
): string[] | Rejected {
  const outOfSpec: string[] = []
  for (const m of station.measurements) {
    const name = m.name
    const v = reading[name]
    if (v === undefined || v === null) return reject('MISSING_FIELD', `measurement "${name}" is missing`)
    if (!m.numeric) {
      const rejected = checkCategory(m, v)
      if (rejected) return rejected
      continue
    }
    if (typeof v !== 'number' || !Number.isFinite(v)) {
      return reject(
        'WRONG_TYPE',
        `"${name}" must be a finite number, got ${typeName(v)} ${JSON.stringify(v)}`,
      )
    }
    const numeric = m as NumericMeasurement
    const rejected = checkNumber(numeric, v)
    if (rejected) return rejected
    const rounded = round(v, numeric.type === 'number' ? numeric.decimals : 0)
    reading[name] = rounded
    if (m.limits.length === 0) continue
    const spec = m.limits.length === 1 ? m.limits[0]! : specAt(m, ts)!
    if ((spec.lsl !== undefined && rounded < spec.lsl) || (spec.usl !== undefined && rounded > spec.usl))
      outOfSpec.push(name)
  }
  return outOfSpec
}

function checkCategory(m: Measurement, v: unknown): Rejected | undefined {
  if (m.type === 'boolean') {
    return typeof v === 'boolean'
      ? undefined
      : reject('WRONG_TYPE', `"${m.name}" must be true or false, got ${typeName(v)} ${JSON.stringify(v)}`)
  }
  if (typeof v !== 'string') return reject('WRONG_TYPE', `"${m.name}" must be a string, got ${typeName(v)}`)
  if (m.type === 'enum' && !m.values.includes(v)) {
    return reject('INVALID_VALUE', `"${m.name}" is ${JSON.stringify(v)}; allowed: ${m.values.join(', ')}`)
  }
  return undefined
}

function checkNumber(m: NumericMeasurement, v: number): Rejected | undefined {
  if (m.type === 'integer' && !Number.isInteger(v))
    return reject('WRONG_TYPE', `"${m.name}" must be an integer, got ${v}`)
  const { min, max } = m.range
  if (v < min || v > max) {
    const unit = m.symbol ?? m.unit
    return reject(
      'OUT_OF_PLAUSIBLE_RANGE',
      `"${m.name}" = ${v} ${unit} is outside the plausible ${min}…${max}`,
    )
  }
  return undefined
}

const typeName = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v)

/** Round half away from zero to `digits` decimals, without binary-representation surprises. */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits
  const scaled = Math.abs(value) * factor
  const r = Math.round(Number(scaled.toPrecision(15)))
  return (Math.sign(value) * r) / factor || 0
}
