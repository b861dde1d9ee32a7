// What the containers test checks, each a small function: readings at the API, a reading from a
// client on the host (kafkajs, an independent Kafka client, through the HOST listener), Kafka's
// security (no login refused, each user held to its ACLs), the consumer group's split, and the
// exactly-once count of rows against Kafka's end offsets.
import { randomUUID } from 'node:crypto'
import { Consumer } from '@platformatic/kafka'
import kafkajs from 'kafkajs'
import { assert, getJson, say, sh, waitFor } from './lib.mjs'

const { Kafka, logLevel, AclResourceTypes, AclOperationTypes, AclPermissionTypes, ResourcePatternTypes } =
  kafkajs

export const STATIONS = ['chassis', 'battery', 'paint', 'quality']

/** The admin's client settings in the kafka container, written by its entrypoint (compose.yaml). */
export const KAFKA_ADMIN_CONFIG = '/opt/kafka/config/admin-client.properties'

/**
 * A kafkajs client of the HOST listener, logged in with SCRAM-SHA-512 as `login`
 * ({username, password}), or without a login. Debian 12's kcat (librdkafka 2.0.2) cannot log in
 * with SCRAM to Kafka 4 (docs/security.md), so kcat is only the client without credentials.
 */
export function hostClient(broker, login) {
  return new Kafka({
    clientId: `evf-containers-test-${login?.username ?? 'anonymous'}`,
    brokers: [broker],
    ...(login ? { sasl: { mechanism: 'scram-sha-512', ...login } } : {}),
    connectionTimeout: 5000,
    retry: { retries: login ? 5 : 0 },
    logLevel: logLevel.NOTHING,
  })
}

/** `work` with a connected kafkajs client (admin, producer or consumer), disconnected after. */
async function connected(client, work) {
  await client.connect()
  try {
    return await work(client)
  } finally {
    await client.disconnect().catch(() => undefined)
  }
}

const withAdmin = (kafka, work) => connected(kafka.admin(), work)
const withProducer = (kafka, work) => connected(kafka.producer(), work)

/** The error `work` fails with (undefined when it succeeds). */
async function failure(work) {
  try {
    await work()
  } catch (error) {
    return error
  }
  return undefined
}

/** Every `code`, `type` and protocol error name in a Kafka client's error tree (both clients). */
function kafkaCodes(error, into = new Set(), depth = 0) {
  if (!error || typeof error !== 'object' || depth > 8) return into
  for (const c of [error.code, error.apiId, error.type, error.name]) if (typeof c === 'string') into.add(c)
  for (const inner of [...(Array.isArray(error.errors) ? error.errors : []), error.cause])
    kafkaCodes(inner, into, depth + 1)
  return into
}

const refusedWith = (error, code) => error !== undefined && kafkaCodes(error).has(code)
const describe = (error) => {
  if (!error) return 'no error'
  const codes = [...kafkaCodes(error)]
  return codes.find((c) => /_FAILED$/.test(c)) ?? (codes.join(',') || String(error))
}

/** Waits until every station has a reading at GET /sensor-data; returns the ms it took. */
export async function waitForStations(api, timeoutMs) {
  const t0 = Date.now()
  for (const station of STATIONS) {
    await waitFor(`a ${station} reading at ${api}/sensor-data`, timeoutMs - (Date.now() - t0), async () => {
      const rows = await getJson(`${api}/sensor-data?station=${station}&limit=1`)
      return rows.length === 1 && rows[0].station === station && rows[0].data?.processed_at
    })
  }
  return Date.now() - t0
}

/** Partitions of each topic with the prefix, from the broker's metadata (kafkajs, as `login`). */
export async function topicPartitions(kafka, prefix) {
  const { topics } = await withAdmin(kafka, (admin) => admin.fetchTopicMetadata())
  return topics
    .filter((t) => t.name.startsWith(prefix))
    .flatMap((t) => t.partitions.map((p) => ({ topic: t.name, partition: p.partitionId })))
    .sort((a, b) => a.topic.localeCompare(b.topic) || a.partition - b.partition)
}

/** Each partition's end offset (its high watermark), keyed "topic/partition". */
export async function endOffsets(kafka, partitions) {
  const ends = new Map()
  await withAdmin(kafka, async (admin) => {
    for (const topic of new Set(partitions.map((p) => p.topic))) {
      for (const { partition, offset } of await admin.fetchTopicOffsets(topic)) {
        ends.set(`${topic}/${partition}`, Number(offset))
      }
    }
  })
  assert(ends.size === partitions.length, `end offsets of ${partitions.length} partitions, got ${ends.size}`)
  return ends
}

/**
 * Produces one paint reading from the host as `simulator` (kafkajs through the HOST listener) and
 * waits until the API serves it.
 */
export async function hostRoundTrip(kafka, api, prefix) {
  const sensorId = `host-${randomUUID().slice(0, 8)}`
  const timestamp = Date.now() / 1000
  const reading = {
    station: 'paint',
    timestamp,
    booth_temp: 21.46,
    booth_humidity: 58.04,
    paint_thickness: 1.1234,
    sensor_id: sensorId,
  }
  await withProducer(kafka, (producer) =>
    producer.send({
      topic: `${prefix}paint`,
      acks: -1,
      messages: [{ key: sensorId, value: JSON.stringify(reading) }],
    }),
  )
  const since = new Date((timestamp - 1) * 1000).toISOString()
  const until = new Date((timestamp + 1) * 1000).toISOString()
  const url = `${api}/sensor-data?station=paint&limit=1000&since=${since}&until=${until}`
  const row = await waitFor(`the host's reading ${sensorId} at ${api}/sensor-data`, 60_000, async () =>
    (await getJson(url)).find((r) => r.data?.sensor_id === sensorId),
  )
  // Transformed by the ETL: rounded to the catalog's precision and stamped.
  assert(row.data.processed_at, "the host's reading has processed_at")
  assert(row.data.booth_temp === 21.5 && row.data.paint_thickness === 1.123, "the host's reading was rounded")
  return sensorId
}

/** The project's client (@platformatic/kafka) as a consumer logged in as `login`. */
const consumerAs = (broker, login, purpose, groupId) =>
  new Consumer({
    clientId: `evf-containers-test-${purpose}-${login.username}`,
    groupId,
    bootstrapBrokers: [broker],
    sasl: { mechanism: 'SCRAM-SHA-512', ...login },
    retries: 1,
    retryDelay: 200,
  })

/**
 * One Fetch of a topic's partition 0 from offset 0 as `login`, outside any consumer group (the
 * project's client, @platformatic/kafka): the broker checks READ on the topic alone. Resolves
 * with undefined when allowed, or the error.
 */
async function fetchAs(broker, login, topic) {
  // A group id is required by the client; a Fetch uses no group.
  const consumer = consumerAs(broker, login, 'fetch', 'evf-etl-containers-test')
  try {
    return await failure(async () => {
      const meta = await consumer.metadata({ topics: [topic] })
      const { id, partitions } = meta.topics.get(topic)
      await consumer.fetch({
        node: partitions[0].leader,
        maxWaitTime: 100,
        topics: [
          {
            topicId: id,
            partitions: [
              {
                partition: 0,
                currentLeaderEpoch: partitions[0].leaderEpoch,
                fetchOffset: 0n,
                lastFetchedEpoch: -1,
                partitionMaxBytes: 4096,
              },
            ],
          },
        ],
      })
    })
  } finally {
    await consumer.close().catch(() => undefined)
  }
}

/** Joins consumer group `group` on `topic` as `login` and reads one message (@platformatic/kafka). */
async function consumeAs(broker, login, topic, group) {
  const consumer = consumerAs(broker, login, 'consume', group)
  try {
    return await failure(async () => {
      const stream = await consumer.consume({ topics: [topic], mode: 'earliest', autocommit: false })
      try {
        for await (const _message of stream) return
      } finally {
        await stream.close().catch(() => undefined)
      }
    })
  } finally {
    await consumer.close().catch(() => undefined)
  }
}

const enumName = (values, value) => Object.keys(values).find((k) => values[k] === value) ?? String(value)

/** Every ACL of the broker, one line each: "principal permission operation resource pattern name". */
export async function aclLines(kafka) {
  const { resources } = await withAdmin(kafka, (admin) =>
    admin.describeAcls({
      resourceType: AclResourceTypes.ANY,
      resourcePatternType: ResourcePatternTypes.ANY,
      operation: AclOperationTypes.ANY,
      permissionType: AclPermissionTypes.ANY,
    }),
  )
  return resources
    .flatMap((r) =>
      r.acls.map((a) =>
        [
          a.principal,
          enumName(AclPermissionTypes, a.permissionType),
          enumName(AclOperationTypes, a.operation),
          enumName(AclResourceTypes, r.resourceType),
          enumName(ResourcePatternTypes, r.resourcePatternType),
          r.resourceName,
        ].join(' '),
      ),
    )
    .sort()
}

/**
 * Kafka refuses a client without credentials (kcat and kafkajs) and a wrong password on the HOST
 * listener; the ACLs are exactly the components' (docs/security.md); `simulator` writes but
 * cannot read (neither a Fetch nor in a group), `etl` reads but cannot write.
 */
export async function checkKafkaSecurity({ broker, logins, prefix, group }) {
  const topic = `${prefix}paint`
  const kcat = sh('kcat', ['-b', broker, '-L', '-m', '5'], { allowFail: true })
  assert(
    kcat.code !== 0 && !kcat.stdout.includes(topic),
    `kcat without credentials is refused (exit ${kcat.code}: ${kcat.stderr.trim().split('\n').pop()})`,
  )
  say(`  kcat without credentials: exit ${kcat.code}, ${kcat.stderr.trim().split('\n').pop()}`)
  const anonymous = await failure(() => withAdmin(hostClient(broker), (admin) => admin.listTopics()))
  assert(anonymous, 'kafkajs without credentials is refused')
  const wrong = await failure(() =>
    withAdmin(hostClient(broker, { username: 'simulator', password: 'not-the-password' }), () => undefined),
  )
  assert(wrong?.name === 'KafkaJSSASLAuthenticationError', `a wrong password is refused (${describe(wrong)})`)

  const acls = await aclLines(hostClient(broker, logins.admin))
  const expected = [
    `User:etl ALLOW DESCRIBE TOPIC PREFIXED ${prefix}`,
    `User:etl ALLOW READ GROUP PREFIXED ${group}`,
    `User:etl ALLOW READ TOPIC PREFIXED ${prefix}`,
    `User:simulator ALLOW DESCRIBE TOPIC PREFIXED ${prefix}`,
    `User:simulator ALLOW WRITE TOPIC PREFIXED ${prefix}`,
  ].sort()
  assert(
    JSON.stringify(acls) === JSON.stringify(expected),
    `the ACLs are the components' (${acls.join('; ')})`,
  )
  say(`  ${acls.length} ACLs: ${acls.join('; ')}`)

  const etlFetch = await fetchAs(broker, logins.etl, topic)
  assert(etlFetch === undefined, `etl may fetch ${topic} (${describe(etlFetch)})`)
  const simFetch = await fetchAs(broker, logins.simulator, topic)
  assert(
    refusedWith(simFetch, 'TOPIC_AUTHORIZATION_FAILED'),
    `simulator may not fetch ${topic} (${describe(simFetch)})`,
  )
  const simGroup = await consumeAs(broker, logins.simulator, topic, `${group}-containers-test`)
  assert(
    refusedWith(simGroup, 'GROUP_AUTHORIZATION_FAILED'),
    `simulator may not consume in group ${group}-containers-test (${describe(simGroup)})`,
  )
  const etlWrite = await failure(() =>
    withProducer(hostClient(broker, logins.etl), (producer) =>
      producer.send({ topic, acks: -1, messages: [{ value: 'not from etl' }] }),
    ),
  )
  assert(
    refusedWith(etlWrite, 'TOPIC_AUTHORIZATION_FAILED'),
    `etl may not write ${topic} (${describe(etlWrite)})`,
  )
  say(
    `  simulator: Fetch ${describe(simFetch)}; consume in a group ${describe(simGroup)}; etl: write ${describe(etlWrite)}`,
  )
}

/**
 * The ETL group's members and their partition counts, from the broker (kafka-consumer-groups.sh
 * in the kafka container, as in the official image, logged in as admin with the client settings
 * its entrypoint wrote). Rows: [consumerId, partitions].
 */
export function groupMembers(compose, group) {
  const out = compose.exec(
    'kafka',
    'env',
    'KAFKA_HEAP_OPTS=-Xmx128m',
    '/opt/kafka/bin/kafka-consumer-groups.sh',
    '--bootstrap-server',
    'localhost:9092',
    '--command-config',
    KAFKA_ADMIN_CONFIG,
    '--describe',
    '--members',
    '--group',
    group,
  )
  const lines = out.split('\n').map((l) => l.trim().split(/\s+/))
  const column = lines.find((cols) => cols[0] === 'GROUP')?.indexOf('#PARTITIONS') ?? -1
  if (column < 0) return []
  return lines.filter((cols) => cols[0] === group).map((cols) => [cols[1], Number(cols[column])])
}

/** Waits until `workers` members of the group share every partition, each with some. */
export function waitForSplit(compose, group, workers, partitions) {
  return waitFor(
    `${workers} ETL workers sharing ${partitions} partitions in group ${group}`,
    120_000,
    () => {
      const members = groupMembers(compose, group)
      const total = members.reduce((sum, [, n]) => sum + n, 0)
      return members.length === workers && members.every(([, n]) => n > 0) && total === partitions
        ? members
        : false
    },
    3000,
  )
}

/** Waits until the ETL's stored offsets reach every partition's end offset. */
export async function waitCaughtUp(compose, kafka, partitions) {
  const ends = await endOffsets(kafka, partitions)
  await waitFor('the ETL to load up to the end offsets', 120_000, () => {
    const stored = new Map(
      compose
        .sql('SELECT topic, partition, next_offset FROM etl_offsets')
        .map(([t, p, n]) => [`${t}/${p}`, Number(n)]),
    )
    return [...ends].every(([key, end]) => end === 0 || stored.get(key) === end)
  })
  return ends
}

/**
 * Nothing lost, nothing doubled: rows + dead letters = the messages in Kafka (every topic starts at
 * offset 0 on a fresh volume), every source coordinate once, and each simulator reading once —
 * by (sensor_id, seq) within one simulator's life, by (sensor_id, seq, timestamp) across restarts.
 */
export function checkExactlyOnce(compose, ends, { acrossRestarts = false } = {}) {
  const messages = [...ends.values()].reduce((a, b) => a + b, 0)
  const reading = acrossRestarts
    ? "(data->>'sensor_id', data->>'seq', data->>'timestamp')"
    : "(data->>'sensor_id', data->>'seq')"
  const [[rows, coords, dead, deadCoords, simulated, distinctSimulated]] = compose
    .sql(`
    SELECT (SELECT count(*) FROM sensor_data),
           (SELECT count(DISTINCT (source_topic, source_partition, source_offset)) FROM sensor_data),
           (SELECT count(*) FROM dead_letters),
           (SELECT count(DISTINCT (topic, partition, "offset")) FROM dead_letters),
           (SELECT count(*) FROM sensor_data WHERE data ? 'seq'),
           (SELECT count(DISTINCT ${reading}) FROM sensor_data WHERE data ? 'seq')`)
    .map((r) => r.map(Number))
  say(`  ${messages} messages in Kafka; ${rows} rows + ${dead} dead letters; ${simulated} simulator readings`)
  assert(rows + dead === messages, `rows ${rows} + dead letters ${dead} = ${messages} messages in Kafka`)
  assert(coords === rows, `every row's source coordinates once (${coords} distinct of ${rows})`)
  assert(deadCoords === dead, `every dead letter once (${deadCoords} distinct of ${dead})`)
  assert(distinctSimulated === simulated, `each reading once (${distinctSimulated} distinct of ${simulated})`)
  return { messages, rows, dead }
}
