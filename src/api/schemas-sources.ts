/**
 * The devices' sources as the API answers them (`/pipeline/status`, `/ready`, docs/devices.md):
 * part of the contract in schemas.ts. What `evf ingest` records of each connection.
 */
import { type Static, Type } from 'typebox'
import { DateTime, Nullable } from './schemas-common.ts'

/** A source whose ingest has not written its state for this long is down (it writes every 2 s). */
export const SOURCE_STALE_SEC = 10

export const IngestSource = Type.Object({
  source: Type.String({ description: 'its name: mqtt, sparkplug or opcua (one connection each)' }),
  kind: Type.Enum(['mqtt', 'sparkplug', 'opcua'], { type: 'string' }),
  endpoint: Type.String({ description: 'the broker or server, without a password' }),
  stations: Type.Array(Type.String(), { description: 'the stations it feeds' }),
  up: Type.Boolean({
    description: `connected, and its ingest process alive (it wrote its state in the last ${SOURCE_STALE_SEC} s)`,
  }),
  connected: Type.Boolean({ description: 'connected to its broker or server, as ingest last said' }),
  messages_in: Type.Integer({ description: 'messages (OPC UA: values) received' }),
  acknowledged: Type.Integer({ description: 'MQTT messages acknowledged to the broker after Kafka did' }),
  produced: Type.Integer({ description: 'readings produced to Kafka (dead letters by quality included)' }),
  missed: Type.Integer({
    description:
      'values the source could not deliver: a Sparkplug seq gap, OPC UA samples lost while away (estimated)',
  }),
  last_message_at: Nullable(DateTime()),
  last_error: Nullable(Type.String()),
  state_since: DateTime('when it last connected or disconnected'),
  heartbeat_age_sec: Type.Number({ description: 'seconds since its ingest process last wrote its state' }),
})
export type IngestSource = Static<typeof IngestSource>

export const IngestSources = Type.Array(IngestSource, {
  description: 'the devices’ sources of `evf ingest` (docs/devices.md); empty when no station reads devices',
})

export const StaleSensors = Type.Array(
  Type.Object({
    station: Type.String(),
    sensor_id: Type.String(),
    since: DateTime('when its source said it went offline'),
    reason: Type.String({ description: 'what said so: a Sparkplug NDEATH or DDEATH' }),
  }),
  { description: 'sensors whose source declared them offline: their last values are stale, not quiet' },
)
