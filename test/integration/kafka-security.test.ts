import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'
import { classify, kafkaCodes, kafkaRefusal } from '../../src/errors/index.ts'
import { brokerList, createAdmin, kafkaEnv, kafkaSecretsFile, scramLogin } from '../../src/kafka/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { cli, collect } from '../helpers.ts'
import { consumeFirst, createTopicAs, failure, produceAs } from '../kafka-as.ts'

/**
 * The test broker as `npm test` starts it (test/run.ts): SASL/SCRAM-SHA-512, the StandardAuthorizer,
 * and the components' ACLs for the default topic prefix `sensor.` and group prefix `evf-etl`.
 */
const brokers = process.env.EVF_TEST_KAFKA_BROKERS ?? ''
const env = (name: string) => {
  const v = process.env[name]
  if (!v) throw new Error(`${name} is not set: run the tests with \`npm test\``)
  return v
}
const admin = () => scramLogin(brokers, 'admin', env('EVF_TEST_KAFKA_PASSWORD'))
const simulator = () => scramLogin(brokers, 'simulator', env('EVF_TEST_KAFKA_SIMULATOR_PASSWORD'))
const etl = () => scramLogin(brokers, 'etl', env('EVF_TEST_KAFKA_ETL_PASSWORD'))

const denied = async (work: () => Promise<unknown>) => kafkaRefusal(await failure(work))

const createTopic = (name: string) => createTopicAs(admin(), name)

const kafkajs = (sasl?: { username: string; password: string }) =>
  new Kafka({
    clientId: 'evf-test-kafkajs',
    brokers: brokerList(brokers),
    ...(sasl ? { sasl: { mechanism: 'scram-sha-512' as const, ...sasl } } : {}),
    retry: { retries: 0 },
    connectionTimeout: 5000,
    logLevel: logLevel.NOTHING,
  })

describe('Kafka: authenticated and authorised (SASL/SCRAM-SHA-512, ACLs)', () => {
  const id = randomUUID().slice(0, 8)
  const topic = `sensor.security-${id}`
  const group = `evf-etl-security-${id}`

  it('refuses a client without credentials (@platformatic/kafka and kafkajs)', async () => {
    const anonymous = new Admin({
      clientId: 'evf-test-anonymous',
      bootstrapBrokers: brokerList(brokers),
      retries: 1,
      retryDelay: 100,
    })
    const error = await failure(() => anonymous.listTopics())
    await anonymous.close().catch(() => undefined)
    // The broker closes a connection that does not start with a SASL handshake.
    assert.ok(kafkaCodes(error).has('PLT_KFK_NETWORK'), String(error))

    const client = kafkajs().admin()
    const refused = await failure(async () => {
      await client.connect()
      await client.listTopics()
    })
    await client.disconnect().catch(() => undefined)
    assert.match((refused as Error).name, /^KafkaJS/, String(refused))
  })

  it('refuses a wrong password, as KAFKA_AUTH naming the user (and kafkajs too)', async () => {
    const wrong = scramLogin(brokers, 'simulator', 'not-the-password')
    const client = createAdmin(wrong, 'evf-test-wrong-password')
    const error = await failure(() => client.listTopics())
    await client.close().catch(() => undefined)
    assert.equal(kafkaRefusal(error), 'authentication')
    const classified = classify(error, 'simulator')
    assert.equal(classified.code, 'KAFKA_AUTH')
    assert.equal(classified.canRetry, false)
    assert.equal(classified.exitCode, 9)
    assert.match(classified.message, /"simulator"/)

    const other = kafkajs({ username: 'etl', password: 'not-the-password' }).admin()
    const refused = await failure(() => other.connect())
    await other.disconnect().catch(() => undefined)
    assert.equal((refused as Error).name, 'KafkaJSSASLAuthenticationError')
  })

  it('lets simulator write the station topics, and nothing else: no reading, no creating, no other topic', async () => {
    await createTopic(topic)
    await produceAs(simulator(), topic, 'from the simulator')

    assert.equal(await denied(() => consumeFirst(simulator(), topic, group)), 'GROUP_AUTHORIZATION_FAILED')
    assert.equal(
      await denied(() => createTopicAs(simulator(), `sensor.security-new-${id}`)),
      'TOPIC_AUTHORIZATION_FAILED',
    )
    const outside = `outside-${id}`
    await createTopic(outside)
    assert.equal(await denied(() => produceAs(simulator(), outside, 'x')), 'TOPIC_AUTHORIZATION_FAILED')
  })

  it('lets etl read the station topics in its groups, and nothing else: no writing, no creating, no other group', async () => {
    await createTopic(`${topic}-etl`)
    await produceAs(admin(), `${topic}-etl`, 'for the etl')
    assert.equal(await consumeFirst(etl(), `${topic}-etl`, group), 'for the etl')

    // The idempotent producer asks for a producer id first, which etl may not have.
    assert.equal(await denied(() => produceAs(etl(), `${topic}-etl`, 'x')), 'CLUSTER_AUTHORIZATION_FAILED')
    assert.equal(
      await denied(() => createTopicAs(etl(), `sensor.security-new-${id}`)),
      'TOPIC_AUTHORIZATION_FAILED',
    )
    assert.equal(
      await denied(() => consumeFirst(etl(), `${topic}-etl`, `other-${id}`)),
      'GROUP_AUTHORIZATION_FAILED',
    )

    // The independent client agrees: a plain (not idempotent) produce is refused on the topic.
    const producer = kafkajs({ username: 'etl', password: env('EVF_TEST_KAFKA_ETL_PASSWORD') }).producer()
    await producer.connect()
    const refused = await failure(() =>
      producer.send({ topic: `${topic}-etl`, acks: -1, messages: [{ value: 'x' }] }),
    )
    await producer.disconnect()
    assert.match(String((refused as { type?: string }).type ?? refused), /TOPIC_AUTHORIZATION_FAILED/)
  })

  it('`evf simulate` as a user who may not create the missing topics exits 9, naming the user, without the password', async () => {
    const password = env('EVF_TEST_KAFKA_SIMULATOR_PASSWORD')
    const run = await collect(
      cli(['simulate'], {
        ...kafkaEnv(simulator()),
        EVF_TOPIC_PREFIX: `sensor.security-missing-${id}.`,
        EVF_SIM_COUNT: '10',
      }),
    )
    assert.equal(run.code, 9, run.stderr)
    assert.match(run.stderr, /KAFKA_AUTH: .*Kafka user "simulator" may not create them/)
    assert.ok(!run.stderr.includes(password) && !run.stdout.includes(password))
  })

  it('keeps the credentials in files of mode 0600', () => {
    const dataDir = join(repoRoot, '.test-stack')
    for (const file of [kafkaSecretsFile(dataDir), join(dataDir, 'kafka', 'server.properties')]) {
      assert.equal(statSync(file).mode & 0o777, 0o600, file)
    }
  })
})
