/**
 * The ETL's load transaction: a batch's rows (by COPY), its dead letters, its rollups and the
 * offsets it covers, written together or not at all, behind the offset fence.
 */
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import type { SourceRecord } from '../../catalog/index.ts'
import { PipelineError } from '../../errors/index.ts'
import { encodeLoaded, LOADED_CHANNEL } from './loaded.ts'
import { type Rollups, rollupCtes } from './rollups.ts'
import { transaction } from './transaction.ts'

/** A row for `sensor_data`, of a station of the catalog. */
export interface SensorRow {
  station: string
  /** the transformed reading, serialised: what `data` holds */
  data: string
  /** reading time, epoch seconds */
  timestamp: number
  topic: string
  partition: number
  offset: bigint
  /** a device's reading (a record with header evf-source): its sensor, part of its natural key */
  sensorId?: string
  /** its broker redelivered it (header evf-redelivered): loaded only if its natural key is new */
  redelivered?: boolean
}

/** A message the ETL rejected, with its raw bytes, and why. */
export interface NewDeadLetter {
  record: SourceRecord
  rejection: { reasonCode: string; reason: string }
}

/** What one load transaction writes: rows, their rollups, dead letters, and the offsets they cover. */
export interface LoadBatch {
  rows: SensorRow[]
  rollups: Rollups
  deadLetters: NewDeadLetter[]
  advances: OffsetAdvance[]
  /** `rows` in COPY's text format (`copyText`), made ahead of the load when given */
  copy?: string
  /** the rollups of the rows kept, when redelivered rows turn out to be loaded already */
  rollupsOf?: (kept: readonly SensorRow[]) => Rollups
}

/** Where a partition's stored offset must be (`expected`) and where this batch moves it (`next`). */
export interface OffsetAdvance {
  topic: string
  partition: number
  expected: bigint
  next: bigint
}

const COPY_ROWS =
  'COPY sensor_data (station, data, reading_time, source_topic, source_partition, source_offset) FROM STDIN'

/** The rows in COPY's text format, as the load sends them (prepared ahead by the ETL). */
export function copyText(rows: readonly SensorRow[]): string {
  let text = ''
  for (const r of rows) text += copyLine(r)
  return text
}

/**
 * One row in COPY's text format. `data` is JSON.stringify output, which never holds a raw tab,
 * newline or carriage return (JSON escapes them), so doubling its backslashes is all the
 * escaping COPY needs; station and topic are catalog names and Kafka topic names.
 */
function copyLine(r: SensorRow): string {
  return `${r.station}\t${r.data.replaceAll('\\', '\\\\')}\t${isoMicros(r.timestamp)}\t${r.topic}\t${r.partition}\t${r.offset}\n`
}

/** The ISO 8601 text of the last whole second formatted: a batch's readings share a few seconds. */
let second = Number.NaN
let secondText = ''

/** Epoch seconds → ISO 8601 with microseconds, PostgreSQL's timestamptz precision. */
export function isoMicros(epochSeconds: number): string {
  const us = Math.round(epochSeconds * 1e6)
  const s = Math.floor(us / 1e6)
  if (s !== second) {
    second = s
    secondText = new Date(s * 1000).toISOString().slice(0, 19)
  }
  return `${secondText}.${String(us - s * 1e6).padStart(6, '0')}Z`
}

const INSERT_DEAD_LETTERS = `
INSERT INTO dead_letters (topic, partition, "offset", message_key, message_value, headers, reason_code, reason)
SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bytea[], $5::bytea[], $6::jsonb[], $7::text[], $8::text[])`

const LOCK_OFFSETS = `
SELECT 1 FROM etl_offsets WHERE (topic, partition) IN (SELECT * FROM unnest($1::text[], $2::int[]))
ORDER BY topic, partition FOR UPDATE`

// The fence: a partition's offset moves only from the value this loader read. If another worker
// moved it in between, fewer rows match and the whole transaction is rolled back.
const ADVANCE_OFFSETS = `
UPDATE etl_offsets o SET next_offset = u.next, updated_at = now()
FROM unnest($1::text[], $2::int[], $3::bigint[], $4::bigint[]) AS u(topic, partition, expected, next)
WHERE o.topic = u.topic AND o.partition = u.partition AND o.next_offset = u.expected`

/**
 * Asynchronous commit: the rows and the offsets they advance are one transaction, so a
 * PostgreSQL crash that loses its last commits loses both, and they are loaded again from Kafka;
 * anything durable committed later (an alarm's outbox row) flushes them first (docs/etl.md).
 */
const BEGIN_LOAD = 'BEGIN; SET LOCAL synchronous_commit TO off'

/**
 * The last round trip: the rollups merged, the commit noted (its readings, for the current
 * ingest rate) and announced to listeners of `evf_loaded`.
 */
const END_LOAD = (ctes: string) => `WITH ${ctes},
c AS (INSERT INTO etl_commits (rows) VALUES ($21) RETURNING 1)
SELECT pg_notify($19, $20) FROM c`

/** UTC days (epoch day numbers) this process knows have a partition. */
const daysWithPartition = new Set<number>()

/**
 * Makes sure sensor_data has a daily partition for every reading's day. Outside the load
 * transaction: creating a partition locks the parent table, which must not wait on a COPY.
 */
export async function ensurePartitions(client: pg.ClientBase, rows: readonly SensorRow[]): Promise<void> {
  let lo = Number.POSITIVE_INFINITY
  let hi = Number.NEGATIVE_INFINITY
  for (const r of rows) {
    const day = Math.floor(r.timestamp / 86_400)
    if (daysWithPartition.has(day)) continue
    lo = Math.min(lo, day)
    hi = Math.max(hi, day)
  }
  if (lo > hi) return
  await client.query('SELECT sensor_data_ensure_partitions(to_timestamp($1), to_timestamp($2))', [
    lo * 86_400,
    hi * 86_400,
  ])
  for (let d = lo; d <= hi; d++) daysWithPartition.add(d)
}

/**
 * Loads one batch in one transaction: rows, their rollups, dead letters and the offsets they
 * cover. Either all of it is committed or none; a fenced batch throws `OFFSET_FENCED` and leaves
 * nothing behind. On commit, listeners of `evf_loaded` learn which source ranges arrived.
 */
export async function loadBatch(client: pg.PoolClient, batch: LoadBatch): Promise<void> {
  await ensurePartitions(client, batch.rows)
  try {
    await loadInTransaction(client, batch)
  } catch (error) {
    // A day this process saw before was dropped since (retention): forget what it knew, make
    // the partitions again, and load the batch once more.
    if ((error as { code?: string }).code !== NO_PARTITION) throw error
    daysWithPartition.clear()
    await ensurePartitions(client, batch.rows)
    await loadInTransaction(client, batch)
  }
}

/** SQLSTATE of "no partition of relation … found for row" */
const NO_PARTITION = '23514'

async function loadInTransaction(client: pg.PoolClient, batch: LoadBatch): Promise<void> {
  const { deadLetters, advances } = batch
  let { rows, rollups } = batch
  await transaction(
    client,
    async () => {
      await fence(client, advances)
      const kept = await withoutLoaded(client, rows)
      if (kept.length < rows.length) {
        rows = kept
        rollups = batch.rollupsOf?.(kept) ?? rollups
      }
      if (rows.length > 0) {
        // COPY: the fastest way into PostgreSQL, and still inside this transaction.
        const text = rows === batch.rows && batch.copy !== undefined ? batch.copy : copyText(rows)
        await pipeline(Readable.from([text]), client.query(copyFrom(COPY_ROWS)))
      }
      if (deadLetters.length > 0) await insertDeadLetters(client, deadLetters)
      // Last: the rollup rows, which every worker's batches share, are locked for the shortest time.
      if (rows.length > 0) {
        const { ctes, values } = rollupCtes(rollups)
        const loaded = advances.map((a) => ({
          topic: a.topic,
          partition: a.partition,
          from: a.expected,
          to: a.next,
        }))
        await client.query(END_LOAD(ctes), [...values, LOADED_CHANNEL, encodeLoaded(loaded), rows.length])
      }
    },
    BEGIN_LOAD,
  )
}

async function insertDeadLetters(client: pg.PoolClient, deadLetters: NewDeadLetter[]): Promise<void> {
  await client.query(INSERT_DEAD_LETTERS, [
    deadLetters.map((d) => d.record.topic),
    deadLetters.map((d) => d.record.partition),
    deadLetters.map((d) => d.record.offset.toString()),
    deadLetters.map((d) => d.record.key ?? null),
    deadLetters.map((d) => d.record.value ?? null),
    deadLetters.map((d) => JSON.stringify(headersToJson(d.record.headers))),
    deadLetters.map((d) => d.rejection.reasonCode),
    deadLetters.map((d) => d.rejection.reason),
  ])
}

/**
 * The fence, first in the transaction: locks the batch's partitions' offset rows (in one order,
 * so two loaders never deadlock), checks that each still holds the offset this loader read, and
 * moves it. A worker that was just given a partition and still has an old position (another
 * worker committed since) is stopped here, before it writes a row, as `OFFSET_FENCED`: it
 * re-reads the positions and re-seeks, staying in its consumer group.
 */
async function fence(client: pg.PoolClient, advances: OffsetAdvance[]): Promise<void> {
  const columns = [
    advances.map((a) => a.topic),
    advances.map((a) => a.partition),
    advances.map((a) => a.expected.toString()),
    advances.map((a) => a.next.toString()),
  ]
  await client.query(LOCK_OFFSETS, columns.slice(0, 2))
  const moved = await client.query(ADVANCE_OFFSETS, columns)
  if (moved.rowCount !== advances.length) {
    throw new PipelineError(
      'OFFSET_FENCED',
      `offsets of ${advances.length - (moved.rowCount ?? 0)} partition(s) moved under this loader; batch rolled back`,
    )
  }
}

/** Redelivered rows whose reading is loaded already, by natural key: station, sensor, reading time. */
const LOADED_ALREADY = `
SELECT u.i FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(station, sensor, t, i)
WHERE EXISTS (SELECT 1 FROM sensor_data s
              WHERE s.station = u.station AND s.reading_time = u.t AND s.data->>'sensor_id' = u.sensor)`

/**
 * The rows to load: all but redelivered ones (MQTT DUP) whose natural key — station, sensor,
 * reading time — is already in sensor_data or earlier in this batch. Only redelivered rows are
 * looked up (by the station/time index), so readings from other producers cost nothing here.
 */
async function withoutLoaded(client: pg.PoolClient, rows: SensorRow[]): Promise<SensorRow[]> {
  if (!rows.some((r) => r.redelivered)) return rows
  const key = (r: SensorRow) => `${r.station}\u0000${r.sensorId}\u0000${isoMicros(r.timestamp)}`
  const seen = new Set<string>()
  const doubled = new Set<SensorRow>()
  const suspects: SensorRow[] = []
  for (const r of rows) {
    if (r.sensorId === undefined) continue
    if (r.redelivered && seen.has(key(r))) doubled.add(r)
    else if (r.redelivered) suspects.push(r)
    seen.add(key(r))
  }
  if (suspects.length > 0) {
    const { rows: found } = await client.query<{ i: string }>(LOADED_ALREADY, [
      suspects.map((r) => r.station),
      suspects.map((r) => r.sensorId),
      suspects.map((r) => isoMicros(r.timestamp)),
    ])
    for (const f of found) doubled.add(suspects[Number(f.i) - 1]!)
  }
  return doubled.size === 0 ? rows : rows.filter((r) => !doubled.has(r))
}

/** Header keys as text; values base64, since a header may hold any bytes. */
function headersToJson(headers: Map<Buffer, Buffer> | undefined): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of headers ?? []) out[k.toString('utf8')] = v ? v.toString('base64') : ''
  return out
}
