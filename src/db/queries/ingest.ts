import type { Pool } from '../pool.ts'

/** A source of `evf ingest` as it reports itself (table `ingest_sources`). */
export interface IngestSourceRow {
  source: string
  kind: 'mqtt' | 'sparkplug' | 'opcua'
  stations: string[]
  endpoint: string
  connected: boolean
  messagesIn: number
  acknowledged: number
  produced: number
  missed: number
  lastMessageAt: Date | undefined
  lastError: string | undefined
  stateSince: Date
}

/**
 * The sources' state, replacing what an earlier ingest recorded (a source no longer planned is
 * removed); each row's heartbeat becomes now. No rows: no ingest runs (`stack up` says so).
 */
export async function recordIngestSources(pool: Pool, rows: IngestSourceRow[]): Promise<void> {
  await pool.query('DELETE FROM ingest_sources WHERE source <> ALL($1::text[])', [rows.map((r) => r.source)])
  if (rows.length === 0) return
  await pool.query(
    `INSERT INTO ingest_sources AS s (source, kind, stations, endpoint, connected, messages_in, acknowledged,
       produced, missed, last_message_at, last_error, state_since, heartbeat_at)
     SELECT u.source, u.kind, string_to_array(u.stations, ','), u.endpoint, u.connected, u.messages_in,
       u.acknowledged, u.produced, u.missed, u.last_message_at, u.last_error, u.state_since, now()
     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::boolean[], $6::bigint[], $7::bigint[],
       $8::bigint[], $9::bigint[], $10::timestamptz[], $11::text[], $12::timestamptz[])
       AS u(source, kind, stations, endpoint, connected, messages_in, acknowledged, produced, missed,
         last_message_at, last_error, state_since)
     ON CONFLICT (source) DO UPDATE SET kind = excluded.kind, stations = excluded.stations,
       endpoint = excluded.endpoint, connected = excluded.connected, messages_in = excluded.messages_in,
       acknowledged = excluded.acknowledged, produced = excluded.produced, missed = excluded.missed,
       last_message_at = excluded.last_message_at, last_error = excluded.last_error,
       state_since = excluded.state_since, heartbeat_at = now()`,
    [
      rows.map((r) => r.source),
      rows.map((r) => r.kind),
      rows.map((r) => r.stations.join(',')),
      rows.map((r) => r.endpoint),
      rows.map((r) => r.connected),
      rows.map((r) => r.messagesIn),
      rows.map((r) => r.acknowledged),
      rows.map((r) => r.produced),
      rows.map((r) => r.missed),
      rows.map((r) => r.lastMessageAt ?? null),
      rows.map((r) => r.lastError ?? null),
      rows.map((r) => r.stateSince),
    ],
  )
}

/** A source as the API shows it, with how old its heartbeat is. */
export interface IngestSourceState extends IngestSourceRow {
  heartbeatAgeSeconds: number
}

export async function ingestSources(pool: Pool): Promise<IngestSourceState[]> {
  const { rows } = await pool.query<{
    source: string
    kind: IngestSourceRow['kind']
    stations: string[]
    endpoint: string
    connected: boolean
    messages_in: string
    acknowledged: string
    produced: string
    missed: string
    last_message_at: Date | null
    last_error: string | null
    state_since: Date
    age: number
  }>(`SELECT *, extract(epoch FROM now() - heartbeat_at)::float8 AS age FROM ingest_sources ORDER BY source`)
  return rows.map((r) => ({
    source: r.source,
    kind: r.kind,
    stations: r.stations,
    endpoint: r.endpoint,
    connected: r.connected,
    messagesIn: Number(r.messages_in),
    acknowledged: Number(r.acknowledged),
    produced: Number(r.produced),
    missed: Number(r.missed),
    lastMessageAt: r.last_message_at ?? undefined,
    lastError: r.last_error ?? undefined,
    stateSince: r.state_since,
    heartbeatAgeSeconds: r.age,
  }))
}

/** A sensor's values stale (a Sparkplug death) from `since`, or live again. */
export async function setSensorStale(
  pool: Pool,
  s: { station: string; sensorId: string; stale: boolean; since: Date; reason: string },
): Promise<void> {
  await pool.query(
    `INSERT INTO sensor_states (station, sensor_id, stale, since, reason) VALUES ($1, $2, $3, $4, $5)
     ON CONFLICT (station, sensor_id) DO UPDATE SET stale = $3, since = $4, reason = $5`,
    [s.station, s.sensorId, s.stale, s.since, s.reason],
  )
}

/** The stale sensors of a station (all stations without one). */
export async function staleSensors(
  pool: Pool,
  station?: string,
): Promise<{ station: string; sensorId: string; since: Date; reason: string }[]> {
  const { rows } = await pool.query<{ station: string; sensor_id: string; since: Date; reason: string }>(
    `SELECT station, sensor_id, since, reason FROM sensor_states
     WHERE stale AND ($1::text IS NULL OR station = $1) ORDER BY station, sensor_id`,
    [station ?? null],
  )
  return rows.map((r) => ({ station: r.station, sensorId: r.sensor_id, since: r.since, reason: r.reason }))
}
