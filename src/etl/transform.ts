import { isStationName, type StationName, stationForTopic, stations } from '../catalog/index.ts'

/** A Kafka record as the ETL sees it, before any parsing. */
export interface SourceRecord {
  topic: string
  partition: number
  offset: bigint
  key: Buffer | null | undefined
  value: Buffer | null | undefined
  headers?: Map<Buffer, Buffer> | undefined
}

/** A row for `sensor_data`. */
export interface LoadRow {
  station: StationName
  /** the transformed reading, serialised: what `data` holds */
  data: string
  /** reading time, epoch seconds */
  timestamp: number
  topic: string
  partition: number
  offset: bigint
}

export type ReasonCode =
  | 'EMPTY_VALUE'
  | 'INVALID_JSON'
  | 'NOT_AN_OBJECT'
  | 'MISSING_STATION'
  | 'UNKNOWN_STATION'
  | 'STATION_TOPIC_MISMATCH'
  | 'MISSING_TIMESTAMP'
  | 'INVALID_TIMESTAMP'
  | 'UNSUPPORTED_CHARACTER'

export interface Rejection {
  reasonCode: ReasonCode
  reason: string
}

export type TransformResult = { ok: true; row: LoadRow } | { ok: false; rejection: Rejection }

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

const reject = (reasonCode: ReasonCode, reason: string): TransformResult => ({
  ok: false,
  rejection: { reasonCode, reason: printable(reason) },
})

/**
 * Validate, then transform as the reference DAG does: numeric fields rounded to the catalog's
 * precision, `processed_at` added. Fields the catalog does not know are kept as they are.
 */
export function transformRecord(
  record: SourceRecord,
  topicPrefix: string,
  processedAt: string,
): TransformResult {
  const value = record.value
  if (!value || value.length === 0) return reject('EMPTY_VALUE', 'the message has no value')
  let parsed: unknown
  try {
    parsed = JSON.parse(value.toString('utf8'))
  } catch (error) {
    return reject('INVALID_JSON', `value is not valid JSON: ${(error as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    return reject(
      'NOT_AN_OBJECT',
      `value is JSON ${Array.isArray(parsed) ? 'array' : typeof parsed}, expected an object`,
    )
  }
  const reading = parsed as Record<string, unknown>
  const station = reading.station
  if (station === undefined) return reject('MISSING_STATION', 'field "station" is missing')
  if (!isStationName(station))
    return reject('UNKNOWN_STATION', `station ${JSON.stringify(station)} is not in the catalog`)
  const topicStation = stationForTopic(record.topic, topicPrefix)
  if (topicStation !== undefined && topicStation !== station) {
    return reject('STATION_TOPIC_MISMATCH', `station "${station}" arrived on topic ${record.topic}`)
  }
  const ts = reading.timestamp
  if (ts === undefined) return reject('MISSING_TIMESTAMP', 'field "timestamp" is missing')
  if (typeof ts !== 'number' || !Number.isFinite(ts) || ts < 0) {
    return reject(
      'INVALID_TIMESTAMP',
      `timestamp ${JSON.stringify(ts)} is not a finite number of epoch seconds`,
    )
  }
  for (const [name, field] of Object.entries(stations[station].fields)) {
    const v = reading[name]
    if (field.kind !== 'enum' && typeof v === 'number' && Number.isFinite(v))
      reading[name] = round(v, field.precision)
  }
  reading.processed_at = processedAt
  const data = JSON.stringify(reading)
  if (NUL_ESCAPE.test(data)) {
    return reject(
      'UNSUPPORTED_CHARACTER',
      'a string holds U+0000, which PostgreSQL text and jsonb cannot store',
    )
  }
  return {
    ok: true,
    row: {
      station,
      data,
      timestamp: ts,
      topic: record.topic,
      partition: record.partition,
      offset: record.offset,
    },
  }
}

/** Round half away from zero to `digits` decimals, without binary-representation surprises. */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits
  const scaled = Math.abs(value) * factor
  const r = Math.round(Number(scaled.toPrecision(15)))
  return (Math.sign(value) * r) / factor || 0
}
