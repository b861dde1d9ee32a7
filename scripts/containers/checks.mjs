// What the containers test checks, each a small function: readings at the API, a reading from an
// independent Kafka client (kcat on the host), the consumer group's split, and the exactly-once
// count of rows against Kafka's end offsets.
import { randomUUID } from 'node:crypto'
import { assert, getJson, say, sh, waitFor } from './lib.mjs'

export const STATIONS = ['chassis', 'battery', 'paint', 'quality']

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

/** Partitions of each topic with the prefix, from the broker's metadata (kcat -L). */
export function topicPartitions(broker, prefix) {
  const meta = JSON.parse(sh('kcat', ['-b', broker, '-L', '-J', '-m', '10']))
  return meta.topics
    .filter((t) => t.topic.startsWith(prefix))
    .flatMap((t) => t.partitions.map((p) => ({ topic: t.topic, partition: p.partition })))
}

/** Each partition's end offset (kcat -Q with timestamp -1), keyed "topic/partition". */
export function endOffsets(broker, partitions) {
  const args = partitions.flatMap(({ topic, partition }) => ['-t', `${topic}:${partition}:-1`])
  const out = sh('kcat', ['-b', broker, '-Q', '-m', '10', ...args])
  const ends = new Map()
  for (const m of out.matchAll(/^(\S+) \[(\d+)\] offset (-?\d+)/gm)) ends.set(`${m[1]}/${m[2]}`, Number(m[3]))
  assert(ends.size === partitions.length, `end offsets of ${partitions.length} partitions, got ${ends.size}`)
  return ends
}

/** Produces one paint reading with kcat from the host and waits until the API serves it. */
export async function kcatRoundTrip(broker, api, prefix) {
  const sensorId = `kcat-${randomUUID().slice(0, 8)}`
  const timestamp = Date.now() / 1000
  const reading = {
    station: 'paint',
    timestamp,
    booth_temp: 21.46,
    booth_humidity: 58.04,
    paint_thickness: 1.1234,
    sensor_id: sensorId,
  }
  sh('kcat', ['-b', broker, '-P', '-t', `${prefix}paint`, '-k', sensorId, '-m', '10'], {
    input: `${JSON.stringify(reading)}\n`,
  })
  const since = new Date((timestamp - 1) * 1000).toISOString()
  const until = new Date((timestamp + 1) * 1000).toISOString()
  const url = `${api}/sensor-data?station=paint&limit=1000&since=${since}&until=${until}`
  const row = await waitFor(`the kcat reading ${sensorId} at ${api}/sensor-data`, 60_000, async () =>
    (await getJson(url)).find((r) => r.data?.sensor_id === sensorId),
  )
  // Transformed by the ETL: rounded to the catalog's precision and stamped.
  assert(row.data.processed_at, 'the kcat reading has processed_at')
  assert(row.data.booth_temp === 21.5 && row.data.paint_thickness === 1.123, 'the kcat reading was rounded')
  return sensorId
}

/**
 * The ETL group's members and their partition counts, from the broker (kafka-consumer-groups.sh
 * in the kafka container, as in the official image). Rows: [consumerId, partitions].
 */
export function groupMembers(compose, group) {
  const out = compose.exec(
    'kafka',
    'env',
    'KAFKA_HEAP_OPTS=-Xmx128m',
    '/opt/kafka/bin/kafka-consumer-groups.sh',
    '--bootstrap-server',
    'localhost:9092',
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
export async function waitCaughtUp(compose, broker, partitions) {
  const ends = endOffsets(broker, partitions)
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
