/**
 * Sparkplug B payloads (protobuf) through Eclipse Tahu's `sparkplug-payload`, the specification's
 * reference encoder, turned into the plain values sparkplug-state.ts reads. protobufjs gives 64-bit
 * integers (seq, alias, bdSeq, timestamps, Int64/UInt64 values) as `Long` objects: made Numbers.
 */
import sparkplugPayload from 'sparkplug-payload'
import type { MetricValue, SpbMessage, SpbMessageType, SpbMetric } from './sparkplug-state.ts'

const codec = sparkplugPayload.get('spBv1.0')
if (!codec) throw new Error('sparkplug-payload lacks the spBv1.0 namespace')

export type SparkplugPayload = Parameters<NonNullable<typeof codec>['encodePayload']>[0]

const TYPES = new Set(['NBIRTH', 'NDEATH', 'DBIRTH', 'DDEATH', 'NDATA', 'DDATA'])

/** A message type the host follows (not NCMD, DCMD or STATE). */
export function isSparkplugMessageType(type: string): type is SpbMessageType {
  return TYPES.has(type)
}

export function encodeSparkplug(payload: SparkplugPayload): Buffer {
  return Buffer.from(codec!.encodePayload(payload))
}

/** The message, or undefined when the bytes are not a Sparkplug B payload. */
export function decodeSparkplug(
  type: SpbMessageType,
  group: string,
  node: string,
  device: string | undefined,
  bytes: Buffer,
): SpbMessage | undefined {
  let payload: SparkplugPayload
  try {
    payload = codec!.decodePayload(bytes)
  } catch {
    return undefined
  }
  const metrics: SpbMetric[] = (payload.metrics ?? []).map((m) => ({
    name: m.name ?? undefined,
    alias: toNumber(m.alias),
    timestamp: toNumber(m.timestamp),
    value: m.isNull ? undefined : toValue(m.value),
  }))
  return {
    type,
    group,
    node,
    device,
    timestamp: toNumber(payload.timestamp),
    seq: toNumber(payload.seq),
    metrics,
  }
}

/** A protobuf Long (or number) as a Number; undefined for anything else. */
function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v
  if (v !== null && typeof v === 'object' && 'low' in v && 'high' in v) return Number(String(v))
  return undefined
}

function toValue(v: unknown): MetricValue | undefined {
  if (typeof v === 'string' || typeof v === 'boolean') return v
  return toNumber(v)
}
