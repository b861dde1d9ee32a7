/**
 * bench:api's database, a fresh cluster (harness/services.ts), migrated and filled with `rows`
 * readings generated in SQL over the last 7 days (bench/api-data.ts): chunks generated side by side into staging tables and moved into sensor_data in order, secondary indexes built
 * after the load, then rollups (when the schema has them), VACUUM and ANALYZE, as a long-running
 * database would be.
 */
import { migrate, type Pool } from '../src/db/index.ts'
import { insertChunks } from './api-data.ts'
import { checkInterrupted, fmt, progress, seconds } from './harness/index.ts'

export const DAY_MS = 86_400_000
const SPAN_MS = 7 * DAY_MS

async function functionsPresent(pool: Pool, names: string[]): Promise<Set<string>> {
  const { rows } = await pool.query<{ proname: string }>(
    `SELECT DISTINCT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
     WHERE n.nspname = current_schema() AND p.proname = ANY($1)`,
    [names],
  )
  return new Set(rows.map((r) => r.proname))
}

interface IndexDef {
  name: string
  create: string
}

/** The table's indexes other than its primary key: how to drop each and build it again. */
async function dropSecondaryIndexes(pool: Pool): Promise<IndexDef[]> {
  const { rows } = await pool.query<{
    name: string
    def: string
    conname: string | null
    condef: string | null
  }>(
    `SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def,
            c.conname, pg_get_constraintdef(c.oid) AS condef
     FROM pg_index i LEFT JOIN pg_constraint c ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid
     WHERE i.indrelid = 'sensor_data'::regclass AND NOT i.indisprimary
     ORDER BY 1`,
  )
  const out: IndexDef[] = []
  for (const r of rows) {
    if (r.conname && r.condef) {
      await pool.query(`ALTER TABLE sensor_data DROP CONSTRAINT ${quoteIdent(r.conname)}`)
      out.push({
        name: r.conname,
        create: `ALTER TABLE sensor_data ADD CONSTRAINT ${quoteIdent(r.conname)} ${r.condef}`,
      })
    } else {
      await pool.query(`DROP INDEX ${r.name}`)
      // on a partitioned table the definition reads ON ONLY (the parent alone); built on all
      out.push({ name: r.name, create: r.def.replace(' ON ONLY ', ' ON ') })
    }
  }
  progress(`dropped ${out.length} secondary indexes for the load: ${out.map((o) => o.name).join(', ')}`)
  return out
}
const quoteIdent = (name: string) => `"${name.replace(/"/g, '""')}"`

/** Runs the tasks, `n` at a time. */
async function inParallel(tasks: (() => Promise<void>)[], n: number): Promise<void> {
  let next = 0
  const worker = async () => {
    for (let i = next++; i < tasks.length; i = next++) {
      checkInterrupted()
      await tasks[i]!()
    }
  }
  await Promise.all(Array.from({ length: Math.min(n, tasks.length) }, worker))
}

export interface LoadSummary {
  rows: number
  schemaNote: string
  sizeText: string
  loadSeconds: number
  prepareSeconds: number
}

export interface DataShape {
  rows: number
  /** readings per generated chunk */
  chunk: number
  /** sessions generating chunks side by side */
  loaders: number
}

const COLUMNS = 'station, data, reading_time, created_at, source_topic, source_partition, source_offset'

/** Migrates the fresh database and fills it: `shape.rows` readings, indexed, rolled up, vacuumed. */
export async function loadData(pool: Pool, shape: DataShape): Promise<LoadSummary> {
  const applied = await migrate(pool)
  progress(`migrations applied: ${applied.join(', ')}`)
  // A bulk load on a throw-away cluster: fewer checkpoints. Reloaded, no restart needed.
  await pool.query(`ALTER SYSTEM SET max_wal_size = '8GB'`)
  await pool.query('SELECT pg_reload_conf()')
  const have = await functionsPresent(pool, ['sensor_data_ensure_partitions', 'rollups_rebuild'])
  const endMs = Date.now()
  const from = new Date(endMs - SPAN_MS - DAY_MS)
  const to = new Date(endMs + DAY_MS)
  if (have.has('sensor_data_ensure_partitions')) {
    progress('creating the partitions for the 7 days…')
    await pool.query('SELECT sensor_data_ensure_partitions($1, $2)', [from, to])
  }
  // Bulk-load practice: the secondary indexes and unique constraints are dropped for the load
  // and built again after it from their own definitions (a sorted build instead of 10M
  // insertions into each), so the schema is the one the migrations declare.
  const secondary = await dropSecondaryIndexes(pool)
  const t0 = performance.now()
  await generate(pool, shape, endMs)
  const loadSeconds = (performance.now() - t0) / 1000
  const t1 = performance.now()
  await prepare(pool, secondary, have.has('rollups_rebuild') ? { from, to } : undefined)
  const prepareSeconds = (performance.now() - t1) / 1000
  return { rows: shape.rows, ...(await verify(pool, shape.rows, have)), loadSeconds, prepareSeconds }
}

function deferred() {
  let resolve!: () => void
  let reject!: (e: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(() => undefined) // observed by the inserter
  return { promise, resolve, reject }
}

/**
 * A pipeline: `loaders` sessions generate chunks (the costly part: random values, JSON) into
 * unlogged staging tables side by side, and one session moves them into sensor_data in order,
 * so ids grow with reading time as the ETL's do.
 */
async function generate(pool: Pool, shape: DataShape, endMs: number): Promise<void> {
  const { rows: total, chunk, loaders } = shape
  const chunks = insertChunks({ total, endMs, spanMs: SPAN_MS }, chunk)
  progress(
    `generating ${fmt(total)} readings in SQL: ${chunks.length} chunks of ≤ ${fmt(chunk)}, ` +
      `${loaders} generating at a time, one session inserting in order…`,
  )
  const t0 = performance.now()
  const stage = (i: number) => `bench_stage_${i}`
  const staged = chunks.map(deferred)
  let inserted = 0 // chunks moved into sensor_data
  // every generator waiting for room (one variable would keep only the last: the others would
  // never wake, and the inserter would wait forever for their chunks)
  const waiting: (() => void)[] = []
  let next = 0
  const generator = async () => {
    for (let i = next++; i < chunks.length; i = next++) {
      // at most loaders + 1 chunks staged ahead of the inserter (disk)
      while (i - inserted > loaders + 1) await new Promise<void>((r) => waiting.push(r))
      checkInterrupted()
      try {
        await pool.query(`CREATE UNLOGGED TABLE ${stage(i)} (${COLUMNS}) AS ${chunks[i]!.select}`)
        staged[i]!.resolve()
      } catch (error) {
        staged[i]!.reject(error)
        throw error
      }
    }
  }
  let done = 0
  const inserter = async () => {
    const client = await pool.connect()
    try {
      // a seq scan of a fresh table returns its rows in the order they were written
      await client.query('SET synchronize_seqscans = off')
      for (let i = 0; i < chunks.length; i++) {
        await staged[i]!.promise
        checkInterrupted()
        await client.query(`INSERT INTO sensor_data (${COLUMNS}) SELECT ${COLUMNS} FROM ${stage(i)}`)
        await client.query(`DROP TABLE ${stage(i)}`)
        inserted = i + 1
        for (const wake of waiting.splice(0)) wake()
        done += chunks[i]!.rows
        const rate = done / ((performance.now() - t0) / 1000)
        progress(`  ${fmt(done)} / ${fmt(total)} rows (${fmt(rate)} rows/s, ${seconds(t0)})`)
      }
    } finally {
      client.release()
    }
  }
  await Promise.all([inserter(), ...Array.from({ length: Math.min(loaders, chunks.length) }, generator)])
}

/** After the load: the secondary indexes, the rollups (if `rollups`), VACUUM (ANALYZE). */
async function prepare(pool: Pool, secondary: IndexDef[], rollups?: { from: Date; to: Date }): Promise<void> {
  progress(`building ${secondary.length} indexes, 2 at a time…`)
  await inParallel(
    secondary.map((index) => async () => {
      const t = performance.now()
      await pool.query(index.create)
      progress(`  built ${index.name} in ${seconds(t)}`)
    }),
    2,
  )
  if (rollups) {
    const t = performance.now()
    // whole-hour slices, so that the function's hour rounding never makes two of them overlap
    const HOUR_MS = 3_600_000
    const start = Math.floor(rollups.from.getTime() / HOUR_MS) * HOUR_MS
    const days = Math.ceil((rollups.to.getTime() - start) / DAY_MS)
    progress(`rebuilding the rollups, ${days} days, 2 at a time…`)
    await inParallel(
      Array.from({ length: days }, (_, d) => async () => {
        const lo = new Date(start + d * DAY_MS)
        const hi = new Date(lo.getTime() + DAY_MS)
        await pool.query('SELECT rollups_rebuild($1, $2)', [lo, hi])
      }),
      2,
    )
    progress(`  rollups rebuilt in ${seconds(t)}`)
  }
  // What autovacuum would do on its own soon after a load this size — done now, so it does not
  // run in the middle of a measurement: visibility map, hint bits, planner statistics. The
  // partitions two at a time, then the rest (and the partitioned parent's statistics).
  const t2 = performance.now()
  progress('VACUUM (ANALYZE)…')
  const { rows: leaves } = await pool.query<{ name: string }>(
    `SELECT relid::regclass::text AS name FROM pg_partition_tree('sensor_data') WHERE isleaf`,
  )
  await inParallel(
    leaves.map((leaf) => async () => {
      await pool.query(`VACUUM (ANALYZE) ${leaf.name}`)
    }),
    2,
  )
  await pool.query('VACUUM (ANALYZE)')
  progress(`  VACUUM (ANALYZE) done in ${seconds(t2)}`)
}

async function verify(pool: Pool, expected: number, have: Set<string>) {
  const { rows } = await pool.query<{ n: number; size: string; parts: number }>(
    `SELECT (SELECT count(*) FROM sensor_data)::bigint AS n,
            pg_size_pretty(sum(pg_total_relation_size(relid))) AS size,
            count(*) FILTER (WHERE isleaf)::int AS parts
     FROM pg_partition_tree('sensor_data')`,
  )
  const { n, size, parts } = rows[0]!
  if (n !== expected) throw new Error(`expected ${expected} rows in sensor_data, found ${n}`)
  const schemaNote =
    `${parts > 1 ? `sensor_data partitioned (${parts} daily partitions)` : 'sensor_data unpartitioned'}; ` +
    `rollups ${have.has('rollups_rebuild') ? 'rebuilt' : 'not in this schema'}`
  progress(`${fmt(n)} rows, ${size} with indexes; ${schemaNote}`)
  return { schemaNote, sizeText: size }
}
