import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { describe, it } from 'node:test'
import type { Config } from '../../src/config/index.ts'
import type { Pool } from '../../src/db/index.ts'
import { createProducer } from '../../src/kafka/index.ts'
import { PlantSimulator, toMessage } from '../../src/simulator/index.ts'
import { cli, collect, count, envOf, isolatedConfig, killTree, sleep, waitFor } from '../helpers.ts'
import { plant, topicFor } from '../plant.ts'

const INVALID = [
  '{"station": "paint", "timest',
  '[1, 2, 3]',
  '{"station": "paint", "timestamp": "yesterday", "booth_temp": 20, "booth_humidity": 60, "paint_thickness": 1.1}',
]

/** Produces `n` messages: simulator readings, every `everyInvalid`-th replaced by a malformed one. */
async function produceMixed(
  config: Config,
  n: number,
  everyInvalid: number,
): Promise<{ valid: number; invalid: number }> {
  const simulator = new PlantSimulator({
    catalog: plant,
    stations: ['paint', 'battery', 'chassis', 'quality'],
    sensorsPerStation: 5,
    seed: 5,
    faultRate: 0.01,
  })
  const producer = createProducer(config, 'evf-test-mixed')
  let valid = 0
  let invalid = 0
  let t = Date.now() - n * 50
  try {
    for (let sent = 0; sent < n; ) {
      const messages = []
      while (messages.length < 2000 && sent < n) {
        for (const r of simulator.tick(t)) {
          if (sent >= n) break
          const m = toMessage(r, plant, config.topicPrefix)
          sent++
          if (sent % everyInvalid === 0) {
            messages.push({ ...m, value: Buffer.from(INVALID[invalid % INVALID.length]!) })
            invalid++
          } else {
            messages.push(m)
            valid++
          }
        }
        t += 200
      }
      await producer.send({ messages })
    }
  } finally {
    await producer.close()
  }
  return { valid, invalid }
}

async function assertExactlyOnce(pool: Pool, valid: number, invalid: number): Promise<void> {
  assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), valid, 'rows = valid messages')
  assert.equal(
    await count(pool, 'SELECT count(*) AS n FROM dead_letters'),
    invalid,
    'dead letters = invalid messages',
  )
  assert.equal(
    await count(
      pool,
      `SELECT count(*) AS n FROM (
         SELECT source_topic, source_partition, source_offset FROM sensor_data
         UNION ALL SELECT topic, partition, "offset" FROM dead_letters) c`,
    ),
    await count(
      pool,
      `SELECT count(*) AS n FROM (
         SELECT DISTINCT * FROM (SELECT source_topic, source_partition, source_offset FROM sensor_data
         UNION ALL SELECT topic, partition, "offset" FROM dead_letters) u) d`,
    ),
    'no message is stored twice, as a row or as a dead letter',
  )
  assert.equal(
    await count(pool, 'SELECT sum(next_offset) AS n FROM etl_offsets'),
    valid + invalid,
    'offsets cover every message',
  )
}

describe('the ETL under faults', () => {
  it('loads 200k readings exactly once while `etl run` is killed with SIGKILL at random moments', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const { valid, invalid } = await produceMixed(config, 200_000, 97)
    const env = { ...envOf(config), EVF_ETL_BATCH_SIZE: '2000', EVF_ETL_LINGER_MS: '20' }
    let kills = 0
    for (let attempt = 0; attempt < 40; attempt++) {
      const child = cli(['etl', 'run'], env)
      const done = collect(child)
      if (kills < 12) {
        // A random moment: sometimes before the first batch, mostly in the middle of loading
        // (short enough that a fast load is still killed a dozen times before it is done).
        await sleep(200 + Math.random() * 1000)
        if (child.exitCode === null) {
          child.kill('SIGKILL')
          kills++
        }
      }
      const result = await done
      if (result.code === 0) {
        const summary = JSON.parse(result.stdout)
        if (summary.loaded === 0 && summary.rejected === 0) break
      } else if (result.code !== null) {
        assert.fail(`etl run failed with ${result.code}: ${result.stderr}`)
      }
    }
    assert.ok(kills >= 10, `killed ${kills} times`)
    await assertExactlyOnce(pool, valid, invalid)
  })

  it('splits partitions between workers of one group: one added, one killed mid-stream, nothing lost or doubled', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 6 })
    const env = { ...envOf(config), EVF_ETL_BATCH_SIZE: '500', EVF_ETL_LINGER_MS: '20' }
    const workers: ChildProcess[] = []
    t.after(() => {
      for (const w of workers) killTree(w)
    })
    const start = () => {
      const w = cli(['etl', 'follow'], env)
      w.stderr?.resume()
      w.stdout?.resume()
      workers.push(w)
      return w
    }
    const first = await produceMixed(config, 30_000, 101)
    start()
    start()
    await waitFor(
      'the first rows',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) > 2000,
      60_000,
    )
    start()
    await waitFor(
      'more rows',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) > 10_000,
      60_000,
    )
    // `etl follow` supervises its worker process: kill both at once, as a machine crash would.
    killTree(workers[0]!)
    const second = await produceMixed(config, 30_000, 101)
    const valid = first.valid + second.valid
    const invalid = first.invalid + second.invalid
    await waitFor(
      'every message loaded',
      async () =>
        (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) +
          (await count(pool, 'SELECT count(*) AS n FROM dead_letters')) >=
        valid + invalid,
      120_000,
    )
    // Give a straggler time to double something, if it could.
    await sleep(2000)
    for (const w of workers.slice(1)) w.kill('SIGTERM')
    await Promise.all(
      workers.slice(1).map((w) => (w.exitCode === null ? new Promise((r) => w.once('exit', r)) : null)),
    )
    await assertExactlyOnce(pool, valid, invalid)
  })

  it('dead-letters a corpus of bad input with the right reason, loads its valid neighbours, and never stops', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    const topic = topicFor('paint', config.topicPrefix)
    const now = Date.now() / 1000
    const good = {
      station: 'paint',
      timestamp: now - 5,
      booth_temp: 21.04,
      booth_humidity: 55.55,
      paint_thickness: 1.2,
    }
    const q = { station: 'quality', timestamp: now - 5, defect_count: 0, inspection_result: 'PASS' }
    const json = (o: object) => JSON.stringify(o)
    // [value, expected reason code or 'LOADED', optional key / topic / headers]
    const corpus: [
      string | Buffer | null,
      string,
      { key?: string | null; topic?: string; headers?: Record<string, string> }?,
    ][] = [
      ['{"station": "paint", "timest', 'INVALID_JSON'],
      [json(good).slice(0, 30), 'INVALID_JSON'],
      ['not json at all', 'INVALID_JSON'],
      ['[1,2,3]', 'NOT_AN_OBJECT'],
      ['42', 'NOT_AN_OBJECT'],
      ['"paint"', 'NOT_AN_OBJECT'],
      ['null', 'NOT_AN_OBJECT'],
      [Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), 'INVALID_UTF8'],
      [null, 'EMPTY_VALUE'],
      ['', 'EMPTY_VALUE'],
      [json({ ...good, padding: 'x'.repeat(900_000) }), 'VALUE_TOO_LARGE'],
      [`{"a":${'{"a":'.repeat(20)}1${'}'.repeat(21)}`, 'TOO_DEEP'],
      ['{"station":"paint","station":"battery"}', 'DUPLICATE_KEY'],
      [json({ timestamp: now }), 'MISSING_STATION'],
      [json({ ...good, station: 'welding' }), 'UNKNOWN_STATION'],
      [json({ ...good, station: "paint'; DROP TABLE sensor_data; --" }), 'UNKNOWN_STATION'],
      [json(q), 'STATION_TOPIC_MISMATCH'],
      [json({ ...good, timestamp: undefined }), 'MISSING_TIMESTAMP'],
      [json({ ...good, timestamp: String(now) }), 'INVALID_TIMESTAMP'],
      [json({ ...good, timestamp: now * 1000 }), 'TIMESTAMP_IN_FUTURE'],
      [json({ ...good, timestamp: now + 86_400 }), 'TIMESTAMP_IN_FUTURE'],
      [json({ ...good, timestamp: 946_684_800 }), 'TIMESTAMP_TOO_OLD'],
      [json({ ...good, paint_thickness: undefined }), 'MISSING_FIELD'],
      [json({ ...good, booth_temp: '21.0' }), 'WRONG_TYPE'],
      [json({ ...good, booth_temp: 'NaN' }), 'WRONG_TYPE'],
      [json({ ...good, booth_temp: 'Infinity' }), 'WRONG_TYPE'],
      [json({ ...good, booth_humidity: -3 }), 'OUT_OF_PLAUSIBLE_RANGE'],
      [json({ ...good, note: 'nul \u0000 inside' }), 'UNSUPPORTED_CHARACTER'],
      [
        json({ ...q, inspection_result: 'MAYBE' }),
        'INVALID_VALUE',
        { topic: topicFor('quality', config.topicPrefix) },
      ],
      // Edge cases that are valid data and must load:
      [json(good), 'LOADED', { key: null }],
      [json({ ...good, firmware: '2.4.1', shift: 'B' }), 'LOADED'],
      [json({ ...good, note: "'); DELETE FROM sensor_data; --" }), 'LOADED'],
      [json({ ...good, note: 'Zürich ✓ 🚗 \u0001\u001f tabs\tand\nnewlines' }), 'LOADED'],
      [json({ ...good, booth_temp: 40 }), 'LOADED'],
      [json(good), 'LOADED', { headers: { 'trace-id': 'abc', source: 'plc-7' } }],
    ]
    const producer = createProducer(config, 'evf-test-corpus')
    try {
      for (const [value, , opts] of corpus) {
        await producer.send({
          messages: [
            {
              topic: opts?.topic ?? topic,
              key: opts?.key === null ? undefined : Buffer.from(opts?.key ?? 'paint-01'),
              value: value === null ? undefined : Buffer.from(value),
              headers: opts?.headers
                ? new Map(Object.entries(opts.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]))
                : undefined,
            },
            // A valid neighbour after every bad message.
            { topic, key: Buffer.from('paint-02'), value: Buffer.from(json(good)) },
          ] as Parameters<typeof producer.send>[0]['messages'],
        })
      }
    } finally {
      await producer.close()
    }
    const result = await collect(cli(['etl', 'run'], envOf(config)))
    assert.equal(result.code, 0, result.stderr)
    const expectedDead = corpus.filter(([, code]) => code !== 'LOADED')
    assert.ok(expectedDead.length >= 25, `${expectedDead.length} kinds of bad input`)
    const { rows } = await pool.query<{
      reason_code: string
      topic: string
      offset: number
      headers: Record<string, string>
    }>('SELECT reason_code, topic, "offset", headers FROM dead_letters ORDER BY topic, "offset"')
    assert.deepEqual(
      rows.map((r) => r.reason_code).sort(),
      expectedDead.map(([, code]) => code).sort(),
      'each bad message is dead-lettered with its reason',
    )
    // Every valid neighbour, plus the valid edge cases, loaded.
    const loaded = corpus.length + corpus.filter(([, code]) => code === 'LOADED').length
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), loaded)
    assert.equal(
      await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE data->'out_of_spec' ? 'booth_temp'`),
      1,
    )
    const sql = await pool.query(
      `SELECT data->>'note' AS note FROM sensor_data WHERE data ? 'note' ORDER BY id`,
    )
    assert.equal(sql.rows[0].note, "'); DELETE FROM sensor_data; --", 'SQL-looking text is stored as text')
  })

  it('lists dead letters and re-drives chosen ones once a rule is relaxed', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    const topic = topicFor('paint', config.topicPrefix)
    const old = {
      station: 'paint',
      timestamp: Date.now() / 1000 - 40 * 86_400,
      booth_temp: 21,
      booth_humidity: 55,
      paint_thickness: 1.2,
    }
    const producer = createProducer(config, 'evf-test-redrive')
    await producer.send({
      messages: [
        { topic, key: Buffer.from('k'), value: Buffer.from(JSON.stringify(old)) },
        { topic, key: Buffer.from('k'), value: Buffer.from('[1]') },
      ],
    })
    await producer.close()
    assert.equal((await collect(cli(['etl', 'run'], envOf(config)))).code, 0)

    const list = await collect(cli(['etl', 'dead-letters', 'list', '--json'], envOf(config)))
    assert.equal(list.code, 0, list.stderr)
    const listed = list.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    assert.deepEqual(listed.map((d) => d.reason_code).sort(), ['NOT_AN_OBJECT', 'TIMESTAMP_TOO_OLD'])

    // After widening the window, the old reading loads; the array stays a dead letter.
    const env = { ...envOf(config), EVF_ETL_MAX_AGE_DAYS: '60' }
    const retry = await collect(cli(['etl', 'dead-letters', 'retry', '--reason', 'TIMESTAMP_TOO_OLD'], env))
    assert.equal(retry.code, 0, retry.stderr)
    assert.deepEqual(JSON.parse(retry.stdout), { selected: 1, loaded: 1, stillRejected: [] })
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 1)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters WHERE resolved_at IS NULL'), 1)
    // A second retry finds nothing open.
    const again = await collect(cli(['etl', 'dead-letters', 'retry', '--reason', 'TIMESTAMP_TOO_OLD'], env))
    assert.equal(JSON.parse(again.stdout).selected, 0)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 1)
  })
})
