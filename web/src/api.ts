/**
 * Typed wrappers over the API's public endpoints (docs/api.md): the dashboard reads nothing
 * else. Every call reports whether the API answered, so one place can show the banner.
 */

import type { Static } from 'typebox'
import type {
  Bucket,
  Counts,
  EnumField as EnumFieldSchema,
  NumericField as NumericFieldSchema,
  PipelineStatus,
  QualitySummary,
  Reading,
  Station,
  Timeseries,
} from '../../src/api/schemas.ts'
import type { ActionResult, Alarm, AlarmTransition } from '../../src/api/schemas-alarms.ts'

// The answers' types come from the API's own schemas (src/api/schemas.ts), the ones it validates
// and serialises with and publishes at /docs/json: a change there is a type error here.
export type {
  Alarm,
  AlarmTransition,
  Bucket,
  Counts,
  PipelineStatus,
  QualitySummary,
  Reading,
  Station,
  Timeseries,
}
export type AlarmState = Alarm['state']
export type Severity = Alarm['severity']
export type AlarmAction = Static<typeof ActionResult>
export type Field = Station['fields'][number]
export type NumericField = Static<typeof NumericFieldSchema>
export type EnumField = Static<typeof EnumFieldSchema>
/** The spec limits in force from a time on (null: from the start). */
export type Limits = Timeseries['limits'][number]

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
  return send<T>(url(path, params), { headers: { accept: 'application/json' } })
}

/**
 * A POST of JSON. The session cookie goes along (same origin; SameSite=Strict keeps other sites'
 * pages from sending it), which is how the dashboard acts with its session's scope `operate`.
 */
function post<T>(path: string, body: object): Promise<T> {
  return send<T>(path, {
    method: 'POST',
    headers: { accept: 'application/json', 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
}

async function send<T>(target: string, init: RequestInit): Promise<T> {
  let res: Response
  try {
    res = await fetch(target, init)
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
  // A 401 is not an outage, but the banner must say to log in.
  report(res.status < 500 && res.status !== 401, error)
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
  quality: (station: string, bucket: Bucket, r: Range) =>
    get<QualitySummary>('/quality/summary', { station, bucket, ...r }),
  pipeline: (r: Range) => get<PipelineStatus>('/pipeline/status', { ...r }),
  /** Every alarm not NORMAL (what `event: alarm` carries too), most severe and newest first. */
  alarms: () => get<Alarm[]>('/alarms'),
  /** A station's transitions at or after `since`, newest first (the API's longest page). */
  alarmHistory: (station: string, since: string) =>
    get<AlarmTransition[]>('/alarms/history', { station, since, limit: 1000 }),
  acknowledge: (rule: string, subject: string, comment: string) =>
    post<AlarmAction>(`/alarms/${encodeURIComponent(rule)}/acknowledge`, { subject, comment }),
  shelve: (rule: string, subject: string, comment: string, minutes: number) =>
    post<AlarmAction>(`/alarms/${encodeURIComponent(rule)}/shelve`, {
      subject,
      comment,
      for_minutes: minutes,
    }),
  unshelve: (rule: string, subject: string, comment: string) =>
    post<AlarmAction>(`/alarms/${encodeURIComponent(rule)}/unshelve`, { subject, comment }),
}
