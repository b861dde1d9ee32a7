/**
 * `npm run bench:ingest`: what one `evf ingest` moves from an MQTT broker into Kafka, and what the
 * MQTT path costs in latency, side by side with the simulator producing to Kafka directly.
 *
 *  1. Throughput at QoS 1 (fresh PostgreSQL, Kafka and Debian's Mosquitto): `evf ingest` creates
 *     its persistent session and stops; the simulator publishes `--count` readings (200,000) as an
 *     MQTT device, which the broker queues for the session; ingest starts again and the clock
 *     runs until Kafka holds them all (its log end offsets). Baseline, same run: the simulator
 *     producing the same count to Kafka directly, timed the same way.
 *  2. Latency at `--rate` (10,000 readings/s) for `--duration` (60 s), the whole stack twice:
 *     `--sim-transport kafka`, then `--sim-transport mqtt` (device → Mosquitto → ingest → Kafka →
 *     ETL). Device timestamp → queryable (the ETL's commit notification) per reading, as
 *     bench:soak measures it.
 *  3. Prints the figures and ratios, never asserted; appends them to docs/benchmarks-history.md
 *     unless `--no-record`.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { createPool, migrate, type Pool } from '../src/db/index.ts'
import { createConsumer, kafkaEnv } from '../src/kafka/index.ts'
import { startEmbeddedMosquitto } from '../src/services/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { allTopics } from '../test/plant.ts'
import {
  benchDir,
  type Cleanup,
  checkPortsFree,
  cleanEnv,
  cleanup,
  cleanupNow,
  distCli,
  duration,
  ensureDist,
  fmt,
  freshDataDir,
  onCleanup,
  positive,
  progress,
  publish,
  ratio,
  runBench,
  startChild,
  startKafka,
  startPostgres,
  startStack,
  table,
} from './harness/index.ts'
import { CommitLog } from './soak-latency.ts'

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', default: '200000' },
    rate: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '60s' },
    'no-record': { type: 'boolean', default: false },
  },
})
const COUNT = positive('count', args.count)
const RATE = positive('rate', args.rate)
const DURATION_MS = duration('duration', args.duration) * 1000
const INTERVAL_MS = 100
const SENSORS = Math.max(1, Math.round((RATE * INTERVAL_MS) / 1000 / 4))
const PORTS = { kafka: 29292, controller: 29293, api: 28200 }
const PREFIX = 'sensor.'
const cacheDir = benchDir('bench-ingest')
const log = createLogger('bench', 'warn')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Messages in the station topics now: the sum of their log end offsets. */
async function inKafka(env: Record<string, string>): Promise<number> {
  const consumer = createConsumer(
    {
      kafkaBrokers: env.KAFKA_BROKERS!,
      kafkaSaslMechanism: 'scram-sha-512',
      kafkaUsername: env.KAFKA_USERNAME!,
      kafkaPassword: env.KAFKA_PASSWORD!,
      kafkaCaFile: '',
    },
    'bench-ingest-ends',
    'bench-ingest-ends',
  )
  try {
    const ends = await consumer.listOffsets({ topics: allTopics(PREFIX) })
    let n = 0
    for (const offsets of ends.values()) for (const o of offsets) n += Number(o)
    return n
  } finally {
    await consumer.close()
  }
}

/** Runs `evf …` to its end and answers its wall time in seconds. */
async function timed(name: string, argv: string[], env: Record<string, string>): Promise<number> {
  const t0 = performance.now()
  const c = startChild(name, process.execPath, [distCli, ...argv], {
    env,
    logFile: join(cacheDir, `${name}.log`),
  })
  const code = await new Promise<number | null>((r) => c.child.once('exit', r))
  if (code !== 0) throw new Error(`${name} exited with ${code} (log ${join(cacheDir, `${name}.log`)})`)
  return (performance.now() - t0) / 1000
}

/** Waits until Kafka holds `target` messages; answers the seconds since `t0`. */
async function untilInKafka(env: Record<string, string>, target: number, t0: number): Promise<number> {
  let last = 0
  for (;;) {
    const n = await inKafka(env)
    if (n >= target) return (performance.now() - t0) / 1000
    if (n !== last) progress(`${fmt(n)} of ${fmt(target)} in Kafka`)
    last = n
    await sleep(100)
  }
}

async function throughput(): Promise<{ direct: number; mqtt: number }> {
  const pg = await startPostgres(join(cacheDir, 'pg'))
  const kafka = await startKafka(join(cacheDir, 'kafka'), { heapMb: 768, partitions: 3, topicPrefix: PREFIX })
  const mqtt = await startEmbeddedMosquitto({ dataDir: join(cacheDir, 'mqtt'), log })
  const mosquitto = onCleanup('Mosquitto', mqtt.stop)
  const pool: Pool = createPool(pg.url, { max: 1 })
  await migrate(pool)
  const env = {
    ...cleanEnv(),
    ...kafkaEnv(kafka.login),
    DATABASE_URL: pg.url,
    EVF_MQTT_URL: mqtt.url,
    EVF_SIM_SENSORS_PER_STATION: '25',
    EVF_LOG_LEVEL: 'warn',
  } as Record<string, string>
  progress(`baseline: the simulator produces ${fmt(COUNT)} readings to Kafka directly`)
  const direct = await timed('simulate-kafka', ['simulate', '--sim-count', String(COUNT)], env)
  const base = await inKafka(env)
  const ingestEnv = { ...env, EVF_MQTT_USERNAME: 'ingest', EVF_MQTT_PASSWORD: mqtt.passwords.ingest }
  const deviceEnv = { ...env, EVF_MQTT_USERNAME: 'device', EVF_MQTT_PASSWORD: mqtt.passwords.device }
  const ingestArgs = ['ingest', '--sim-transport', 'mqtt']
  // Its session first, so that the broker keeps what is published while it is away.
  const first = startChild('ingest', process.execPath, [distCli, ...ingestArgs], {
    env: ingestEnv,
    logFile: join(cacheDir, 'ingest-1.log'),
  })
  await sleep(3000)
  first.child.kill('SIGTERM')
  await new Promise((r) => first.child.once('exit', r))
  progress(`the simulator publishes ${fmt(COUNT)} readings to Mosquitto at QoS 1 (queued for ingest)`)
  await timed(
    'simulate-mqtt',
    ['simulate', '--sim-transport', 'mqtt', '--sim-count', String(COUNT)],
    deviceEnv,
  )
  const t0 = performance.now()
  const second = startChild('ingest', process.execPath, [distCli, ...ingestArgs], {
    env: ingestEnv,
    logFile: join(cacheDir, 'ingest-2.log'),
  })
  const viaMqtt = await untilInKafka(env, base + COUNT, t0)
  await pool.end()
  // cleanup() runs once per process: this phase's servers stop here, the next phase starts its own.
  for (const c of [second.stop, first.stop, mosquitto]) await cleanupNow(c)
  await kafka.stop()
  await pg.stop()
  return { direct: COUNT / direct, mqtt: COUNT / viaMqtt }
}

interface Latency {
  loaded: number
  p50: number
  p99: number
  max: number
}

async function latency(transport: 'kafka' | 'mqtt'): Promise<Latency> {
  const dataDir = join(cacheDir, `stack-${transport}`)
  await checkPortsFree(Object.values(PORTS))
  await freshDataDir(dataDir)
  let pool: Pool | undefined
  let poolStop: Cleanup | undefined
  let stackStop: Cleanup | undefined
  const stack = await startStack({
    args: [
      ...['--data-dir', dataDir, '--kafka-port', String(PORTS.kafka)],
      ...['--kafka-controller-port', String(PORTS.controller), '--api-port', String(PORTS.api)],
      ...['--etl-mode', 'continuous', '--orchestrator', 'builtin', '--sim-transport', transport],
      ...['--sim-interval-ms', String(INTERVAL_MS), '--sim-sensors-per-station', String(SENSORS)],
      ...['--sim-duration-sec', String(Math.ceil(DURATION_MS / 1000) + 60)],
    ],
    dataDir,
    apiPort: PORTS.api,
    logFile: join(cacheDir, `stack-${transport}.log`),
    onStart: (s) => {
      stackStop = s.stop
    },
    onEndpoints: async ({ databaseUrl }) => {
      pool = createPool(databaseUrl, { max: 2, statementTimeoutMs: 0, application: 'bench-ingest' })
      poolStop = onCleanup('the bench’s pool', () => pool!.end())
    },
  })
  progress(`${transport}: warming up 15 s, then measuring ${fmt(DURATION_MS / 1000)} s`)
  const commits = new CommitLog(stack.databaseUrl)
  await sleep(15_000) // warm-up: the ETL and ingest at speed
  await commits.start()
  const t1 = new Date()
  await sleep(DURATION_MS)
  const t2 = new Date()
  await commits.stop()
  const r = commits.ranges
  const { rows } = await pool!.query<Latency>(
    `WITH c AS (SELECT * FROM unnest($1::float8[], $2::text[], $3::int[], $4::bigint[], $5::bigint[])
                AS c(arrival, topic, partition, lo, hi))
     SELECT count(*)::int AS loaded,
            percentile_cont(0.5) WITHIN GROUP (ORDER BY c.arrival / 1000 - extract(epoch FROM s.reading_time)) AS p50,
            percentile_cont(0.99) WITHIN GROUP (ORDER BY c.arrival / 1000 - extract(epoch FROM s.reading_time)) AS p99,
            max(c.arrival / 1000 - extract(epoch FROM s.reading_time)) AS max
     FROM c JOIN sensor_data s ON s.source_topic = c.topic AND s.source_partition = c.partition
       AND s.source_offset >= c.lo AND s.source_offset < c.hi
     WHERE s.reading_time >= $6 AND s.reading_time < $7`,
    [r.arrival, r.topic, r.partition, r.from, r.to, t1, t2],
  )
  await cleanupNow(poolStop!)
  await cleanupNow(stackStop!)
  return rows[0]!
}

async function main(): Promise<void> {
  ensureDist()
  const tp = await throughput()
  const direct = await latency('kafka')
  const mqtt = await latency('mqtt')
  const ms = (s: number) => `${fmt(s * 1000)} ms`
  const body = [
    `\`npm run bench:ingest -- ${process.argv.slice(2).join(' ')}\`: ${fmt(COUNT)} readings queued at QoS 1; then the whole stack at ${fmt(RATE)} readings/s (${SENSORS} sensors × 4 stations every ${INTERVAL_MS} ms) for ${fmt(DURATION_MS / 1000)} s, through Kafka directly and through Mosquitto and \`evf ingest\`.`,
    '',
    table(
      ['figure', 'through MQTT (evf ingest)', 'simulator → Kafka (same run)', 'ratio'],
      [
        ['readings/s into Kafka, QoS 1 backlog', fmt(tp.mqtt), fmt(tp.direct), ratio(tp.mqtt, tp.direct)],
        ['readings loaded in the window', fmt(mqtt.loaded), fmt(direct.loaded), ''],
        ['device time → queryable, p50', ms(mqtt.p50), ms(direct.p50), ratio(mqtt.p50, direct.p50)],
        ['device time → queryable, p99', ms(mqtt.p99), ms(direct.p99), ratio(mqtt.p99, direct.p99)],
        ['device time → queryable, max', ms(mqtt.max), ms(direct.max), ''],
      ],
    ),
  ].join('\n')
  await cleanup()
  publish('bench:ingest', body, { noRecord: args['no-record'] })
}

await runBench(main)
