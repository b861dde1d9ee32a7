/**
 * `npm run bench:kafka`: which Node Kafka client should the pipeline use? Produces N sensor
 * readings (idempotent, acks=all, batches of 1000) and consumes them back with each client, on
 * the same embedded broker in the same run. Prints messages/s and the ratio
 * @platformatic/kafka ÷ kafkajs, and appends them to docs/benchmarks-history.md.
 *
 *   BENCH_MESSAGES=20000 npm run bench:kafka   (a short trial; default 200,000)
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Consumer, ProduceAcks, Producer } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'
import { catalogFromFile } from '../src/catalog/index.ts'
import { loadConfig } from '../src/config/index.ts'
import { connection, createAdmin } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { PlantSimulator } from '../src/simulator/index.ts'
import { startServices } from '../src/stack/index.ts'
import { benchDir, fmt, progress, publish, ratio, table } from './harness/index.ts'

/** The installed version of a package, as the table names it. */
const version = (name: string): string =>
  JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')).version

const N = Number(process.env.BENCH_MESSAGES ?? 200_000)
const BATCH = 1000
const dataDir = benchDir('bench-kafka', true)
const config = loadConfig(
  { dataDir, kafkaPort: 39092, kafkaControllerPort: 39093, topicPrefix: 'bench.' },
  {},
)
progress('starting an embedded broker…')
const services = await startServices(config, createLogger('bench', 'warn'))
const brokers = [services.kafkaBrokers]
const admin = services.kafka.admin
// Both clients log in as admin (SCRAM-SHA-512): a cost at connect only.
const login = connection(admin)
const kafkajsLogin = {
  mechanism: 'scram-sha-512' as const,
  username: admin.kafkaUsername,
  password: admin.kafkaPassword,
}

const plant = new PlantSimulator({
  catalog: catalogFromFile(),
  stations: ['paint'],
  sensorsPerStation: 50,
  seed: 1,
  faultRate: 0.01,
})
const values: Buffer[] = []
for (let t = 0; values.length < N; t += 5000)
  for (const r of plant.tick(t)) values.push(Buffer.from(JSON.stringify(r)))
const keys = values.map((_, i) => Buffer.from(`paint-${i % 50}`))

async function topic(name: string): Promise<string> {
  const client = createAdmin(admin, 'bench-admin')
  await client.createTopics({ topics: [name], partitions: 3, replicas: 1 })
  await client.close()
  return name
}

async function timed(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now()
  await fn()
  return N / ((performance.now() - t0) / 1000)
}

async function platformatic(): Promise<[number, number]> {
  const name = await topic('bench.platformatic')
  const producer = new Producer({
    clientId: 'b',
    ...login,
    idempotent: true,
    acks: ProduceAcks.ALL,
  })
  const produce = await timed(async () => {
    for (let i = 0; i < N; i += BATCH) {
      await producer.send({
        messages: values.slice(i, i + BATCH).map((value, j) => ({ topic: name, key: keys[i + j]!, value })),
      })
    }
  })
  await producer.close()
  const consumer = new Consumer({
    clientId: 'b',
    groupId: 'bench-p',
    ...login,
    maxWaitTime: 100,
  })
  const consume = await timed(async () => {
    const stream = await consumer.consume({ topics: [name], mode: 'earliest', autocommit: false })
    let n = 0
    for await (const _ of stream) if (++n === N) break
    await stream.close()
  })
  await consumer.close()
  return [produce, consume]
}

async function kafkajs(): Promise<[number, number]> {
  const name = await topic('bench.kafkajs')
  const kafka = new Kafka({ clientId: 'b', brokers, sasl: kafkajsLogin, logLevel: logLevel.NOTHING })
  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 })
  await producer.connect()
  const produce = await timed(async () => {
    for (let i = 0; i < N; i += BATCH) {
      await producer.send({
        topic: name,
        acks: -1,
        messages: values.slice(i, i + BATCH).map((value, j) => ({ key: keys[i + j]!, value })),
      })
    }
  })
  await producer.disconnect()
  const consumer = kafka.consumer({ groupId: 'bench-k', maxWaitTimeInMs: 100 })
  await consumer.connect()
  await consumer.subscribe({ topic: name, fromBeginning: true })
  const consume = await timed(
    () =>
      new Promise<void>((resolve) => {
        let n = 0
        void consumer.run({
          autoCommit: false,
          eachBatch: async ({ batch }) => {
            n += batch.messages.length
            if (n >= N) resolve()
          },
        })
      }),
  )
  await consumer.disconnect()
  return [produce, consume]
}

try {
  progress(`kafkajs: ${N} messages…`)
  const [kp, kc] = await kafkajs()
  progress(`@platformatic/kafka: ${N} messages…`)
  const [pp, pc] = await platformatic()
  const out = table(
    ['client', 'produce msg/s', 'consume msg/s'],
    [
      [`kafkajs ${version('kafkajs')} (baseline)`, fmt(kp), fmt(kc)],
      [`@platformatic/kafka ${version('@platformatic/kafka')}`, fmt(pp), fmt(pc)],
      ['ratio platformatic ÷ kafkajs', ratio(pp, kp), ratio(pc, kc)],
    ],
  )
  publish(
    `Kafka clients, ${N.toLocaleString('en-US')} readings, batches of ${BATCH}, acks=all, idempotent`,
    out,
  )
} finally {
  await services.stop()
}
