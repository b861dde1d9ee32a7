/**
 * `npm run bench:storage`: which indexes serve the API's time-window queries on sensor_data, and
 * what they cost the load. Generates readings over 7 days in SQL (the generator of bench:api),
 * then, for each index variant on the reading time, times the queries that filter by it and
 * records the index sizes; finally times a COPY of fresh rows with the migration's indexes
 * against the primary key alone (the ETL's price for them). Prints ratios against the BRIN-only
 * variant measured in the same run; appends to docs/benchmarks-history.md.
 *
 *   npm run bench:storage -- --rows 3000000   (the default; --rows 10000 is a short trial)
 */
import { parseArgs } from 'node:util'
import { createPool, migrate } from '../src/db/index.ts'
import { insertChunks } from './api-data.ts'
import {
  benchDir,
  onCleanup,
  progress,
  publish,
  runBench,
  startPostgres,
  table,
  times,
} from './harness/index.ts'

const { values } = parseArgs({
  options: { rows: { type: 'string', default: process.env.BENCH_ROWS ?? '3000000' } },
})
const rows = Number(values.rows)
if (!Number.isInteger(rows) || rows < 10_000) throw new Error('--rows must be an integer ≥ 10000')

await runBench(async () => {
  const db = await startPostgres(benchDir('bench-storage'))
  const pool = createPool(db.url, { max: 2, statementTimeoutMs: 0 })
  onCleanup('the bench pool', () => pool.end())
  await migrate(pool)
  const endMs = Date.now()
  const spanMs = 7 * 86_400_000
  await pool.query(
    `SELECT sensor_data_ensure_partitions(now() - interval '8 days', now() + interval '1 day')`,
  )
  // Load without the secondary indexes (as a bulk load would), then build them per variant.
  await pool.query('DROP INDEX sensor_data_station_time_idx, sensor_data_time_brin')
  let done = 0
  for (const chunk of insertChunks({ total: rows, endMs, spanMs }, 500_000)) {
    await pool.query(
      `INSERT INTO sensor_data (station, data, reading_time, created_at, source_topic, source_partition, source_offset) ${chunk.select}`,
    )
    done += chunk.rows
    progress(`generated ${done.toLocaleString('en')} / ${rows.toLocaleString('en')} readings`)
  }
  await pool.query('VACUUM ANALYZE sensor_data')

  // The API's queries that filter by reading time, over windows ending 2 hours before the end.
  const at = new Date(endMs - 2 * 3_600_000)
  const before = (ms: number) => new Date(at.getTime() - ms)
  const queries: [string, string, unknown[]][] = [
    [
      'counts per station, 1 h (/stats/counts)',
      'SELECT station, count(*) FROM sensor_data WHERE reading_time >= $1 AND reading_time < $2 GROUP BY station',
      [before(3_600_000), at],
    ],
    [
      'counts per station, 24 h',
      'SELECT station, count(*) FROM sensor_data WHERE reading_time >= $1 AND reading_time < $2 GROUP BY station',
      [before(86_400_000), at],
    ],
    [
      'one station, 15 min, rows (/export, /sensor-data?since)',
      `SELECT id, data FROM sensor_data WHERE station = 'paint' AND reading_time >= $1 AND reading_time < $2`,
      [before(900_000), at],
    ],
    [
      'newest reading time of a station (data-quality silence)',
      `SELECT max(reading_time) FROM sensor_data WHERE station = 'battery'`,
      [],
    ],
  ]
  const variants: [string, string[]][] = [
    [
      'BRIN (reading_time)',
      ['CREATE INDEX v_brin ON sensor_data USING brin (reading_time) WITH (pages_per_range = 32)'],
    ],
    ['b-tree (reading_time)', ['CREATE INDEX v_bt ON sensor_data (reading_time)']],
    [
      'b-tree (station, reading_time) + BRIN — chosen',
      [
        'CREATE INDEX v_st ON sensor_data (station, reading_time)',
        'CREATE INDEX v_brin ON sensor_data USING brin (reading_time) WITH (pages_per_range = 32)',
      ],
    ],
  ]
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
  const results: { variant: string; sizeMb: number; ms: number[] }[] = []
  for (const [name, ddl] of variants) {
    for (const sql of ddl) await pool.query(sql)
    await pool.query('ANALYZE sensor_data')
    const { rows: size } = await pool.query<{ mb: number }>(
      `SELECT sum(pg_relation_size(i.indexrelid)) / 1048576.0 AS mb FROM pg_index i
       JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relname ~ '^sensor_data_\\d{8}_.*(reading_time|station_reading_time).*idx\\d*$'`,
    )
    const ms: number[] = []
    for (const [label, sql, params] of queries) {
      for (let i = 0; i < 3; i++) await pool.query(sql, params) // warm the cache
      const samples: number[] = []
      for (let i = 0; i < 15; i++) {
        const t0 = performance.now()
        await pool.query(sql, params)
        samples.push(performance.now() - t0)
      }
      ms.push(median(samples))
      progress(`${name}: ${label} ${median(samples).toFixed(2)} ms`)
    }
    results.push({ variant: name, sizeMb: Number(size[0]?.mb ?? 0), ms })
    for (const idx of ['v_brin', 'v_bt', 'v_st']) await pool.query(`DROP INDEX IF EXISTS ${idx}`)
  }

  // The load's price: 200k fresh rows (generated once into a staging table, so generation is
  // not timed) inserted with the keys and /sensor-data's index only, then with all of the
  // migration's indexes.
  const loadRows = 200_000
  const [chunk] = insertChunks({ total: loadRows, endMs, spanMs: 3_600_000 }, loadRows)
  await pool.query(
    `CREATE UNLOGGED TABLE bench_stage AS SELECT * FROM (${chunk!.select}) s(station, data, reading_time, created_at, source_topic, source_partition, source_offset)`,
  )
  const load = async (label: string) => {
    await pool.query('TRUNCATE sensor_data')
    await pool.query('CHECKPOINT')
    const t0 = performance.now()
    await pool.query(
      'INSERT INTO sensor_data (station, data, reading_time, created_at, source_topic, source_partition, source_offset) SELECT * FROM bench_stage',
    )
    const ms = performance.now() - t0
    progress(`${label}: ${loadRows.toLocaleString('en')} rows in ${Math.round(ms)} ms`)
    return ms
  }
  const bare = await load('keys and (station, id) only')
  await pool.query('CREATE INDEX sensor_data_station_time_idx ON sensor_data (station, reading_time)')
  await pool.query(
    'CREATE INDEX sensor_data_time_brin ON sensor_data USING brin (reading_time) WITH (pages_per_range = 32)',
  )
  const indexed = await load('with the migration’s indexes')

  const base = results[0]!
  const out = [
    `${rows.toLocaleString('en')} readings over 7 days in daily partitions; median of 15 runs per query, warm cache.`,
    '',
    table(
      ['index on reading time', 'size MB', ...queries.map((q) => `${q[0]} ms`)],
      results.map((r) => [
        r.variant,
        r.sizeMb.toFixed(2),
        ...r.ms.map((m, i) => `${m.toFixed(2)} (${times(m, base.ms[i]!)} BRIN)`),
      ]),
    ),
    '',
    `Load of ${loadRows.toLocaleString('en')} rows: ${Math.round(bare)} ms with the keys and (station, id) only, ${Math.round(indexed)} ms adding (station, reading_time) and the BRIN (${(indexed / bare).toFixed(2)}×).`,
  ].join('\n')
  publish('bench:storage — indexes for time windows', out)
})
