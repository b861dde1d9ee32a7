/**
 * Typed wrappers over the API's public endpoints (docs/api.md): the dashboard reads nothing
 * else. Every call reports whether the API answered, so one place can show the banner.
 */

export interface NumericField {
  name: string
  kind: 'number' | 'integer'
  unit: string
  description: string
  precision: number
  plausible: { min: number; max: number }
  spec: { min: number; max: number }
}
export interface EnumField {
  name: string
  kind: 'enum'
  description: string
  values: string[]
}
export type Field = NumericField | EnumField

export interface Station {
  name: string
  title: string
  description: string
  topic_suffix: string
  fields: Field[]
}

export interface ReadingData {
  station: string
  /** reading time, epoch seconds */
  timestamp: number
  processed_at?: string
  out_of_spec?: string[]
  [field: string]: unknown
}
export interface Reading {
  id: number
  station: string
  data: ReadingData
  created_at: string
}

export interface Counts {
  from: string
  to: string
  stations: { station: string; records: number }[]
}

export interface Timeseries {
  station: string
  field: string
  unit: string
  bucket: Bucket
  from: string
  to: string
  points: {
    t: string
    count: number
    min: number
    max: number
    mean: number
    stddev: number | null
  }[]
}

export type Outcome = 'PASS' | 'FAIL' | 'REWORK'
export interface QualitySummary {
  from: string
  to: string
  inspections: number
  counts: Record<Outcome, number>
  rates: Record<Outcome, number | null>
  first_pass_yield: number | null
  defects: { total: number; per_inspection: number | null }
  series: ({ t: string; defects: number } & Record<Outcome, number>)[]
}

export interface PipelineStatus {
  etl: {
    last_commit_at: string | null
    seconds_since: number | null
    /** messages wait in Kafka and nothing was committed for `stall_sec` */
    stalled: boolean
    stall_sec: number
    last_run: null | {
      mode: string
      started_at: string
      finished_at: string | null
      /** 'ok' | 'failed', or 'running' while one runs */
      status: string
      rows: number
      dead_letters: number
      error: string | null
    }
  }
  lag: {
    total: number
    partitions: {
      topic: string
      partition: number
      next_offset: number
      end_offset: number
      lag: number
      behind_sec: number | null
      stalled: boolean
    }[]
  }
  ingest: { rows: number; rows_per_second: number }
  dead_letters: {
    total: number
    by_reason: { reason_code: string; count: number }[]
    recent: {
      id: number
      topic: string
      partition: number
      offset: number
      reason_code: string
      reason: string
      created_at: string
    }[]
  }
}

export type Bucket = '1m' | '1h'

/** A window as the API takes it: ISO 8601 bounds. */
export interface Range {
  from: string
  to: string
}

/** An answer other than 2xx, with the problem+json body when there is one. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
  ) {
    super(`${status} ${title}: ${detail}`)
  }
}

type Listener = (ok: boolean, error?: unknown) => void
const listeners: Listener[] = []
/** Called after every request: `ok` is false when the API did not answer or failed (5xx). */
export function onApiStatus(listener: Listener): void {
  listeners.push(listener)
}
const report = (ok: boolean, error?: unknown) => {
  for (const l of listeners) l(ok, error)
}

type Params = Record<string, string | number | undefined>

export function url(path: string, params: Params = {}): string {
  const q = new URLSearchParams()
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v))
  const s = q.toString()
  return s ? `${path}?${s}` : path
}

async function get<T>(path: string, params?: Params): Promise<T> {
  let res: Response
  try {
    res = await fetch(url(path, params), { headers: { accept: 'application/json' } })
  } catch (error) {
    report(false, error)
    throw error
  }
  if (res.ok) {
    report(true)
    return (await res.json()) as T
  }
  const body = (await res.json().catch(() => ({}))) as { title?: string; detail?: string }
  const error = new ApiError(res.status, body.title ?? res.statusText, body.detail ?? '')
  report(res.status < 500, error)
  throw error
}

export const api = {
  stations: () => get<Station[]>('/stations'),
  /**
   * The newest reading of a station, or null before its first one. Asked of /sensor-data
   * (an empty list then) rather than /stations/{station}/latest, whose 404 the browser would log
   * as a console error on every refresh of a new plant's page.
   */
  latest: async (station: string) => (await get<Reading[]>('/sensor-data', { station, limit: 1 }))[0] ?? null,
  counts: (r: Range) => get<Counts>('/stats/counts', { ...r }),
  readings: (station: string, limit: number) => get<Reading[]>('/sensor-data', { station, limit }),
  timeseries: (station: string, field: string, bucket: Bucket, r: Range) =>
    get<Timeseries>('/stats/timeseries', { station, field, bucket, ...r }),
  quality: (bucket: Bucket, r: Range) => get<QualitySummary>('/quality/summary', { bucket, ...r }),
  pipeline: (r: Range) => get<PipelineStatus>('/pipeline/status', { ...r }),
}
