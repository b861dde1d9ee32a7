import { ingestSources, type Pool } from '../db/index.ts'
import { maskPasswords } from '../shared/redact.ts'
import { type IngestSource, SOURCE_STALE_SEC } from './schemas-sources.ts'

/** The devices' sources as the API answers them: `up` is connected and written to recently. */
export async function sourcesStatus(pool: Pool): Promise<IngestSource[]> {
  return (await ingestSources(pool)).map((s) => ({
    source: s.source,
    kind: s.kind,
    endpoint: maskPasswords(s.endpoint),
    stations: s.stations,
    up: s.connected && s.heartbeatAgeSeconds <= SOURCE_STALE_SEC,
    connected: s.connected,
    messages_in: s.messagesIn,
    acknowledged: s.acknowledged,
    produced: s.produced,
    missed: s.missed,
    last_message_at: s.lastMessageAt?.toISOString() ?? null,
    last_error: s.lastError ?? null,
    state_since: s.stateSince.toISOString(),
    heartbeat_age_sec: Math.round(s.heartbeatAgeSeconds * 10) / 10,
  }))
}
