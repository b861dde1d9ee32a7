import assert from 'node:assert/strict'
import { createAdmin, createConsumer, createProducer, type KafkaSettings } from '../src/kafka/index.ts'

/**
 * Kafka operations done as one login, for the tests that check who may do what (SASL, ACLs,
 * TLS). Each opens its own client and closes it.
 */

/** The error `work` fails with; the test fails if it succeeds. */
export async function failure(work: () => Promise<unknown>, expected = 'Kafka to refuse'): Promise<unknown> {
  try {
    await work()
  } catch (error) {
    return error
  }
  assert.fail(`expected ${expected}`)
}

export async function createTopicAs(login: KafkaSettings, name: string): Promise<void> {
  const client = createAdmin(login, 'evf-test-create')
  try {
    await client.createTopics({ topics: [name], partitions: 1, replicas: -1 })
  } finally {
    await client.close()
  }
}

export async function produceAs(login: KafkaSettings, topic: string, value: string): Promise<void> {
  const producer = createProducer(login, 'evf-test-producer')
  try {
    await producer.send({ messages: [{ topic, key: Buffer.from('k'), value: Buffer.from(value) }] })
  } finally {
    await producer.close()
  }
}

/** The first message of `topic`, read as `login` in consumer group `group`. */
export async function consumeFirst(login: KafkaSettings, topic: string, group: string): Promise<string> {
  const consumer = createConsumer(login, 'evf-test-consumer', group)
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
    try {
      for await (const message of stream) return String(message.value)
      return ''
    } finally {
      await stream.close().catch(() => undefined)
    }
  } finally {
    await consumer.close().catch(() => undefined)
  }
}
