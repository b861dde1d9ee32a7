/**
 * The data of bench:connect: the simulator's readings as Kafka Connect rows (topics of their own,
 * in Connect's JSON envelope), the table the sink fills (sensor_data's shape, partitions and
 * indexes), and the check that it holds what the ETL loaded, row for row.
 */
import type { Config } from '../src/config/index.ts'
import type { Pool, SensorRow } from '../src/db/index.ts'
// The ETL's own text of a reading time (microseconds), so that both loaders store the same instant.
import { isoMicros } from '../src/db/queries/load.ts'
import { transformRecord, validationPolicy } from '../src/etl/index.ts'
import { createAdmin, createConsumer, createProducer, ensureTopics } from '../src/kafka/index.ts'
import type { Logger } from '../src/shared/log.ts'
import { allTopics, plant } from '../test/plant.ts'
import { fmt, progress } from './harness/index.ts'

/** The envelope topics: `connect.` + the station topic, so that the ETL (reading `sensor.*`) never sees them. */
export const CONNECT_PREFIX = 'connect.'

/**
 * The schema of every record: sensor_data's columns but id and created_at (which the table
 * fills). `data` is the Json semantic type with the source column type JSONB, so that the
 * PostgreSQL dialect binds it as `cast(? as jsonb)` (a plain string would be bound as varchar,
 * which PostgreSQL does not assign to jsonb); `reading_time` an ISO 8601 ZonedTimestamp with
 * microseconds, bound as timestamptz: Connect's own Timestamp type has only milliseconds.
 */
const SCHEMA = {
  type: 'struct',
  name: 'evf.sensor_row',
  optional: false,
  fields: [
    { field: 'station', type: 'string', optional: false },
    {
      field: 'data',
      type: 'string',
      optional: false,
      name: 'io.debezium.data.Json',
      version: 1,
      parameters: { '__debezium.source.column.type': 'JSONB' },
    },
    {
      field: 'reading_time',
      type: 'string',
      optional: false,
      name: 'io.debezium.time.ZonedTimestamp',
      version: 1,
    },
    { field: 'source_topic', type: 'string', optional: false },
    { field: 'source_partition', type: 'int32', optional: false },
    { field: 'source_offset', type: 'int64', optional: false },
  ],
}
const SCHEMA_JSON = JSON.stringify(SCHEMA)

/**
 * Reads the `n` readings the simulator produced, transforms each as the ETL does (the same
 * function), and produces the row it gives as a Connect record to `connect.<station topic>`,
 * same key and partition. Connect then loads rows the ETL would load, without the validation and
 * transformation the ETL does in the same time: the comparison is of loaders. Returns the topics
 * and how many records they hold (rejected readings have none).
 */
export async function produceEnvelopes(
  config: Config,
  n: number,
  log: Logger,
): Promise<{ topics: string[]; records: number }> {
  const sources = allTopics(config.topicPrefix)
  const topics = sources.map((t) => CONNECT_PREFIX + t.slice(config.topicPrefix.length))
  const admin = createAdmin(config, 'bench-connect-admin')
  try {
    await ensureTopics(admin, topics, config.topicPartitions, log)
  } finally {
    await admin.close()
  }
  const consumer = createConsumer(config, 'bench-connect-envelopes', `bench-connect-${Date.now()}`)
  const producer = createProducer(config, 'bench-connect-envelopes')
  const stream = await consumer.consume({ topics: sources, mode: 'earliest', autocommit: false })
  const policy = validationPolicy(config, plant, Date.now())
  let batch: ConnectRecord[] = []
  let read = 0
  let records = 0
  const idle = setTimeout(() => void stream.close(), 60_000) // nothing more to read: stop waiting
  try {
    for await (const m of stream) {
      idle.refresh()
      const r = transformRecord(m, policy, new Date().toISOString())
      if (r.ok)
        batch.push(connectRecord(CONNECT_PREFIX + m.topic.slice(config.topicPrefix.length), m.key, r.row))
      // 500 records (about 0.5 MB) a send: a send's records of one partition are one record
      // batch, which must stay under the broker's 1 MB message.max.bytes.
      if (++read % 500 === 0 || read === n) {
        await producer.send({ messages: batch }).catch((e: unknown) => {
          const inner = e instanceof AggregateError ? e.errors.map((x) => String(x?.message ?? x)) : []
          throw new Error(`producing Connect records failed: ${String(e)} ${inner.join('; ')}`, { cause: e })
        })
        records += batch.length
        batch = []
        if (read % 50_000 === 0) progress(`  ${fmt(read)} / ${fmt(n)} readings as Connect records`)
      }
      if (read >= n) break
    }
  } finally {
    clearTimeout(idle)
    await stream.close()
    await consumer.close()
    await producer.close()
  }
  if (read < n) throw new Error(`read ${fmt(read)} of the ${fmt(n)} readings produced`)
  return { topics, records }
}

interface ConnectRecord {
  topic: string
  key?: Buffer
  value: Buffer
  partition: number
}

/** A row as a Connect record: the same key and partition as its reading, to `topic`. */
function connectRecord(topic: string, key: Buffer | undefined, row: SensorRow): ConnectRecord {
  const payload = {
    station: row.station,
    data: row.data,
    reading_time: isoMicros(row.timestamp),
    source_topic: row.topic,
    source_partition: row.partition,
    source_offset: Number(row.offset),
  }
  return {
    topic,
    ...(key ? { key } : {}),
    // The schema's text made once and spliced in: JsonConverter parses it for every record anyway.
    value: Buffer.from(`{"schema":${SCHEMA_JSON},"payload":${JSON.stringify(payload)}}`),
    partition: row.partition,
  }
}

/**
 * `table`: sensor_data's columns (created_at DEFAULT now(), the load's transaction time, as the
 * ETL's), indexes and daily partitions, as bench:etl's COPY table: LIKE alone would give a plain
 * table, which skips the routing and per-partition indexes the ETL pays for.
 */
export async function createTargetTable(pool: Pool, table: string): Promise<void> {
  await pool.query(`CREATE TABLE ${table} (LIKE sensor_data INCLUDING ALL) PARTITION BY RANGE (reading_time)`)
  const { rows: parts } = await pool.query<{ name: string; bound: string }>(
    `SELECT c.relname AS name, pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_inherits i
     JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'sensor_data'::regclass`,
  )
  for (const p of parts) await pool.query(`CREATE TABLE ${table}_${p.name} PARTITION OF ${table} ${p.bound}`)
}

/** A row's content: everything but the load's own columns (id, created_at, data's processed_at). */
const CONTENT = `station, data - 'processed_at', reading_time, source_topic, source_partition, source_offset`

/**
 * Throws unless `table` holds `expected` rows and, as a multiset, the same rows as sensor_data
 * (what the ETL loaded from the same readings): each reading once, with the same values.
 */
export async function checkRows(pool: Pool, table: string, expected: number): Promise<void> {
  const { rows } = await pool.query<{ n: number; missing: number; extra: number }>(
    `SELECT (SELECT count(*)::int FROM ${table}) AS n,
            (SELECT count(*)::int FROM (SELECT ${CONTENT} FROM sensor_data EXCEPT ALL SELECT ${CONTENT} FROM ${table}) d) AS missing,
            (SELECT count(*)::int FROM (SELECT ${CONTENT} FROM ${table} EXCEPT ALL SELECT ${CONTENT} FROM sensor_data) d) AS extra`,
  )
  const { n, missing, extra } = rows[0]!
  if (n !== expected || missing || extra)
    throw new Error(
      `${table}: ${fmt(n)} rows for ${fmt(expected)} readings; ${fmt(missing)} of the ETL's rows not in it, ${fmt(extra)} not in the ETL's`,
    )
}
