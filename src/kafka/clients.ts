import { readFileSync } from 'node:fs'
import {
  Admin,
  Connection,
  FetchIsolationLevels,
  ProduceAcks,
  Producer,
  type SASLOptions,
} from '@platformatic/kafka'
import { PipelineError } from '../errors/index.ts'
import { backoff } from '../shared/time.ts'
import { EvfConsumer } from './consumer.ts'
import type { KafkaSettings } from './credentials.ts'

/**
 * A workaround for @platformatic/kafka (1.35, still in 2.12): its connection pool listens for a connection's
 * 'error' once, and a connection to a broker that dies during the SASL handshake can emit a
 * second one; an EventEmitter 'error' with no listener throws, and killed the process (seen when
 * a cluster node was killed under load). The failure also reaches the caller through the
 * request's callback, so an 'error' no one listens for is dropped rather than thrown.
 */
const emit = Connection.prototype.emit
Connection.prototype.emit = function (this: Connection, event: string | symbol, ...args: unknown[]): boolean {
  if (event === 'error' && this.listenerCount('error') === 0) return false
  return emit.call(this, event, ...args)
}

export const brokerList = (brokers: string): string[] =>
  brokers
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean)

/**
 * How every client of the project connects: the brokers, a SASL login when a mechanism is set,
 * TLS when a CA file is given (SASL_SSL). Authentication failures are retried by the client a
 * few times; `classify` then reports them as KAFKA_AUTH, which no one retries.
 */
export function connection(k: KafkaSettings): {
  bootstrapBrokers: string[]
  sasl?: SASLOptions
  tls?: { ca: Buffer }
} {
  const options: ReturnType<typeof connection> = { bootstrapBrokers: brokerList(k.kafkaBrokers) }
  if (k.kafkaSaslMechanism === 'scram-sha-512') {
    options.sasl = { mechanism: 'SCRAM-SHA-512', username: k.kafkaUsername, password: k.kafkaPassword }
  }
  if (k.kafkaCaFile) options.tls = { ca: readCa(k.kafkaCaFile) }
  return options
}

function readCa(file: string): Buffer {
  try {
    return readFileSync(file)
  } catch (error) {
    throw new PipelineError('CONFIG_INVALID', `kafkaCaFile (KAFKA_CA_FILE) ${file}: ${String(error)}`)
  }
}

/** A retried send waits at most this long between tries: production resumes soon after Kafka does. */
const PRODUCE_RETRY_CAP_MS = 2_000

/**
 * Idempotent producer, acks from every in-sync replica: no reading is lost or doubled by a retry.
 * `untilAcknowledged` (the simulator's): the client retries a send until a broker acknowledges it
 * or the producer is closed, rather than failing it after 10 tries. Its retries keep the producer
 * id and sequence numbers, so the broker drops what an earlier try had already written; after a
 * failed send the client starts a new producer id, and a resend then could double a reading.
 */
export function createProducer(
  kafka: KafkaSettings,
  clientId: string,
  { untilAcknowledged = false } = {},
): Producer {
  return new Producer({
    clientId,
    ...connection(kafka),
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: untilAcknowledged ? Number.MAX_SAFE_INTEGER : 10,
    retryDelay: untilAcknowledged ? (_client, _op, attempt) => backoff(attempt, PRODUCE_RETRY_CAP_MS) : 500,
  })
}

export function createAdmin(kafka: KafkaSettings, clientId: string): Admin {
  return new Admin({ clientId, ...connection(kafka), retries: 5, retryDelay: 500 })
}

/**
 * The broker fills a fetch response partition by partition. With the per-partition limit at its
 * default (the whole `maxBytes`), one partition with a backlog filled every fetch and the
 * partitions after it waited until it was drained (seen with the 1.x client, which asked for the
 * partitions always in the same order; 2.x uses incremental fetch sessions). 128 KiB (about 500
 * readings) per partition lets a 4 MiB fetch carry a share of 32 partitions.
 */
const MAX_BYTES_PER_PARTITION = 128 * 1024

/**
 * Consumers read committed messages only, set here rather than left to the client's default:
 * another producer's aborted transaction must never be loaded (nor dead-lettered), and the
 * records of an open one wait until it commits (the last stable offset).
 */

export function createConsumer(kafka: KafkaSettings, clientId: string, groupId: string): EvfConsumer {
  return new EvfConsumer({
    clientId,
    groupId,
    ...connection(kafka),
    isolationLevel: FetchIsolationLevels.READ_COMMITTED,
    maxWaitTime: 500,
    maxBytes: 4 * 1024 * 1024,
    maxBytesPerPartition: MAX_BYTES_PER_PARTITION,
    retries: 10,
    retryDelay: 500,
    sessionTimeout: 10_000,
    rebalanceTimeout: 20_000,
    heartbeatInterval: 1_000,
    highWaterMark: 4096,
  })
}
