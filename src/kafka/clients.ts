import { Admin, Consumer, ProduceAcks, Producer } from '@platformatic/kafka'

export const brokerList = (brokers: string): string[] =>
  brokers
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean)

/** Idempotent producer, acks from every in-sync replica: no reading is lost or doubled by a retry. */
export function createProducer(brokers: string, clientId: string): Producer {
  return new Producer({
    clientId,
    bootstrapBrokers: brokerList(brokers),
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 10,
    retryDelay: 500,
  })
}

export function createAdmin(brokers: string, clientId: string): Admin {
  return new Admin({ clientId, bootstrapBrokers: brokerList(brokers), retries: 5, retryDelay: 500 })
}

/**
 * A fetch asks for every assigned partition, always in the same order, and the client uses no
 * incremental fetch session, so the broker fills the response partition by partition. With the
 * per-partition limit at its default (the whole `maxBytes`), one partition with a backlog filled
 * every fetch and the partitions after it waited until it was drained. 128 KiB (about 500
 * readings) per partition lets a 4 MiB fetch carry a share of 32 partitions.
 */
const MAX_BYTES_PER_PARTITION = 128 * 1024

export function createConsumer(brokers: string, clientId: string, groupId: string): Consumer {
  return new Consumer({
    clientId,
    groupId,
    bootstrapBrokers: brokerList(brokers),
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
