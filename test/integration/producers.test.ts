/**
 * Every message a standard producer can send loads exactly once (issue 19). The messages come
 * from an independent producer, librdkafka through PyPI's confluent-kafka (test/producers/
 * produce.py, in the venv the setup installs), not from the project's Kafka client: compressed
 * batches of every codec, transactions committed and aborted, headers, null keys. Each case has
 * its own database and topics, produces, runs `evf etl run` as a user would, and checks the rows.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import type { Config } from '../../src/config/index.ts'
import type { Pool } from '../../src/db/index.ts'
import type { RunSummary } from '../../src/etl/index.ts'
import { createAdmin, createConsumer } from '../../src/kafka/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { cli, collect, count, envOf, isolatedConfig, killTree, sleep, waitFor } from '../helpers.ts'
import { topicFor } from '../plant.ts'

const python = join(repoRoot, '.cache/producers/venv/bin/python')
const script = join(repoRoot, 'test/producers/produce.py')

type Header = [string, string | null]
interface ProducerRecord {
  key: string | null
  value: string
  headers?: Header[]
}
interface Step {
  end?: 'commit' | 'abort'
  records: ProducerRecord[]
}
interface Produced {
  librdkafka: string
  delivered: number
  steps: {
    end: string | null
    delivered: number
    partitions: Record<string, { first: number; last: number; count: number }>
  }[]
  /** from librdkafka's statistics: the produce batches it sent and the records they held */
  batches: { count: number; records: number; max_records: number }
}

/** A paint reading whose every value is exact at the catalog's precision, so rows compare with `===`. */
function reading(seq: number, t0: number) {
  return {
    station: 'paint',
    timestamp: t0 + seq / 1000,
    booth_temp: (200 + (seq % 50)) / 10,
    booth_humidity: (550 + (seq % 100)) / 10,
    paint_thickness: (1000 + (seq % 300)) / 1000,
    sensor_id: `paint-${seq % 4}`,
    seq,
  }
}

const t0 = Math.floor(Date.now() / 1000) - 600
const records = (from: number, n: number, key: (seq: number) => string | null = (s) => `paint-${s % 4}`) =>
  Array.from({ length: n }, (_, i) => ({
    key: key(from + i),
    value: JSON.stringify(reading(from + i, t0)),
  }))

/** Runs the independent producer; the spec (records, login) goes on its stdin. */
async function produce(
  config: Config,
  spec: { compression?: string; lingerMs?: number; sticky?: number; transactional?: boolean; steps: Step[] },
): Promise<Produced> {
  const child = spawn(python, [script], { stdio: ['pipe', 'pipe', 'pipe'] })
  const done = collect(child)
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
  child.stdin.end(
    JSON.stringify({
      brokers: config.kafkaBrokers,
      username: config.kafkaUsername,
      password: config.kafkaPassword,
      topic: topicFor('paint', config.topicPrefix),
      compression: spec.compression ?? 'none',
      linger_ms: spec.lingerMs ?? 5,
      sticky_partitioning_linger_ms: spec.sticky ?? 10,
      ...(spec.transactional ? { transactional_id: `evf-test-${config.topicPrefix}` } : {}),
      steps: spec.steps,
    }),
  )
  const { code, stdout, stderr } = await done
  clearTimeout(timer)
  assert.equal(code, 0, `produce.py failed (exit ${code}):\n${stderr}`)
  return JSON.parse(stdout) as Produced
}

/**
 * `evf etl run` as a user runs it. One that does not finish in 30 s is stopped (SIGTERM: it
 * prints its summary, with the offsets it was waiting for) and fails the test with what it did.
 */
async function etlRun(config: Config, pool: Pool): Promise<RunSummary> {
  const child = cli(['etl', 'run'], { ...envOf(config), EVF_LOG_LEVEL: 'info' })
  const done = collect(child)
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    child.kill('SIGTERM')
    setTimeout(() => child.kill('SIGKILL'), 5000).unref()
  }, 30_000)
  const { code, stdout, stderr } = await done
  clearTimeout(timer)
  if (timedOut) {
    const { rows } = await pool.query<{ topic: string; partition: number; next_offset: string }>(
      `SELECT topic, partition, next_offset FROM etl_offsets WHERE next_offset > 0 ORDER BY topic, partition`,
    )
    const loaded = await count(pool, 'SELECT count(*) AS n FROM sensor_data')
    assert.fail(
      `etl run did not finish in 30 s: ${loaded} rows, etl_offsets ${JSON.stringify(rows)}, log ends (read_committed) ${JSON.stringify(await logEnds(config))}; stopped, it said ${stdout.trim()}\n${stderr.slice(-2000)}`,
    )
  }
  assert.equal(code, 0, `etl run exited ${code}:\n${stderr.slice(-3000)}`)
  return JSON.parse(stdout) as RunSummary
}

/** The paint topic's end offset per partition, as the ETL's consumer (read_committed) sees it. */
async function logEnds(config: Config): Promise<string[]> {
  const consumer = createConsumer(config, 'evf-test-ends', `${config.etlGroupId}-test`)
  try {
    const topic = topicFor('paint', config.topicPrefix)
    const ends = await consumer.listOffsets({ topics: [topic] })
    return (ends.get(topic) ?? []).map(String)
  } finally {
    await consumer.close()
  }
}

/** The stored position of the paint topic's one partition equals its log end: markers included. */
async function assertPositionAtEnd(config: Config, pool: Pool): Promise<void> {
  const { rows } = await pool.query<{ next_offset: string }>(
    'SELECT next_offset FROM etl_offsets WHERE topic = $1 AND partition = 0',
    [topicFor('paint', config.topicPrefix)],
  )
  // Else a follower's watchdog would see messages waiting (end > position) that never come.
  assert.deepEqual(
    rows.map((r) => String(r.next_offset)),
    await logEnds(config),
    'the position moved past the transaction markers to the log end',
  )
}

/** Exactly the readings `seqs` are rows, once each, with the values produced; no other row. */
async function assertLoadedOnce(pool: Pool, seqs: number[]): Promise<void> {
  const { rows } = await pool.query<{ data: ReturnType<typeof reading> }>(
    `SELECT data FROM sensor_data ORDER BY (data->>'seq')::int`,
  )
  assert.deepEqual(
    rows.map((r) => r.data.seq),
    [...seqs].sort((a, b) => a - b),
    'the rows are exactly the produced readings, each once',
  )
  for (const { data } of rows) {
    const want = reading(data.seq, t0)
    const got = {
      station: data.station,
      timestamp: data.timestamp,
      booth_temp: data.booth_temp,
      booth_humidity: data.booth_humidity,
      paint_thickness: data.paint_thickness,
      sensor_id: data.sensor_id,
      seq: data.seq,
    }
    assert.deepEqual(got, want, `reading ${data.seq}`)
  }
}

async function logBytes(config: Config): Promise<number> {
  const admin = createAdmin(config, 'evf-test-logdirs')
  try {
    const topic = topicFor('paint', config.topicPrefix)
    const partitions = Array.from({ length: config.topicPartitions }, (_, i) => i)
    const brokers = await admin.describeLogDirs({ topics: [{ name: topic, partitions }] })
    let bytes = 0n
    for (const b of brokers)
      for (const dir of b.results)
        for (const t of dir.topics)
          if (t.name === topic) for (const p of t.partitions) bytes += p.partitionSize
    return Number(bytes)
  } finally {
    await admin.close()
  }
}

const range = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i)

describe('messages from an independent producer (librdkafka) load exactly once', () => {
  for (const codec of ['gzip', 'snappy', 'lz4', 'zstd']) {
    it(`${codec}: batches of many compressed records`, async (t) => {
      const { config, pool } = await isolatedConfig(t)
      const n = 3000
      const steps = [{ records: records(0, n) }]
      const produced = await produce(config, { compression: codec, lingerMs: 200, steps })
      assert.equal(produced.delivered, n)
      // The linger made big batches: a few per partition, hundreds of records each.
      assert.ok(
        produced.batches.records === n && produced.batches.max_records >= 500,
        `librdkafka's batches: ${JSON.stringify(produced.batches)}`,
      )
      // The broker keeps the batches as they came (compression.type=producer): far smaller than
      // the values themselves.
      const raw = steps[0]!.records.reduce((s, r) => s + r.value.length, 0)
      const stored = await logBytes(config)
      assert.ok(stored < raw / 3, `${codec}: ${stored} bytes in the log for ${raw} bytes of values`)

      const summary = await etlRun(config, pool)
      assert.equal(summary.status, 'ok')
      assert.equal(summary.loaded, n)
      assert.equal(summary.rejected, 0)
      await assertLoadedOnce(pool, range(0, n))
      assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)
      assert.equal((await etlRun(config, pool)).loaded, 0, 'a second run finds nothing new')
      t.diagnostic(
        `${codec}: ${produced.batches.count} batches (at most ${produced.batches.max_records} records), ${stored} bytes stored for ${raw}`,
      )
    })
  }

  it('a committed transaction: its records load, and the run ends past its commit marker', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    const produced = await produce(config, {
      transactional: true,
      lingerMs: 50,
      steps: [{ end: 'commit', records: records(0, 1000) }],
    })
    assert.deepEqual(produced.steps[0]!.partitions['0'], { first: 0, last: 999, count: 1000 })

    const summary = await etlRun(config, pool)
    assert.equal(summary.loaded, 1000)
    assert.equal(summary.rejected, 0)
    await assertLoadedOnce(pool, range(0, 1000))
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)
    await assertPositionAtEnd(config, pool)
    assert.equal((await etlRun(config, pool)).loaded, 0, 'a second run finds nothing new')
  })

  it('an aborted transaction is neither loaded nor dead-lettered; the committed ones around it load', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    // One partition: committed, aborted, committed, aborted, interleaved in one log, ending aborted.
    const steps: Step[] = [
      { end: 'commit', records: records(0, 300) },
      { end: 'abort', records: records(300, 300) },
      { end: 'commit', records: records(600, 300) },
      { end: 'abort', records: records(900, 300) },
    ]
    const produced = await produce(config, { transactional: true, lingerMs: 50, steps })
    // The aborted records did reach the log, between the committed ones.
    assert.deepEqual(
      produced.steps.map((s) => [s.end, s.partitions['0']?.count]),
      [
        ['commit', 300],
        ['abort', 300],
        ['commit', 300],
        ['abort', 300],
      ],
    )
    assert.ok(produced.steps[1]!.partitions['0']!.first > produced.steps[0]!.partitions['0']!.last)
    assert.ok(produced.steps[2]!.partitions['0']!.first > produced.steps[1]!.partitions['0']!.last)

    const summary = await etlRun(config, pool)
    assert.equal(summary.loaded, 600)
    assert.equal(summary.rejected, 0)
    await assertLoadedOnce(pool, [...range(0, 300), ...range(600, 300)])
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0, 'nothing dead-lettered')
    await assertPositionAtEnd(config, pool)
    assert.equal((await etlRun(config, pool)).loaded, 0, 'a second run finds nothing new')
  })

  it('an aborted transaction larger than one fetch is dropped whole', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    // 3,000 readings, about 450 KB, then a small committed transaction: a fetch (128 KiB per
    // partition) ends inside the aborted one, before its marker.
    const steps: Step[] = [
      { end: 'abort', records: records(0, 3000) },
      { end: 'commit', records: records(3000, 300) },
    ]
    const produced = await produce(config, { transactional: true, lingerMs: 50, steps })
    assert.equal(produced.steps[0]!.partitions['0']?.count, 3000)
    const summary = await etlRun(config, pool)
    assert.equal(summary.loaded, 300, 'only the committed transaction')
    await assertLoadedOnce(pool, range(3000, 300))
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0, 'nothing dead-lettered')
    await assertPositionAtEnd(config, pool)
  })

  it('etl follow loads a committed transaction and its watchdog does not take the marker for a stall', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 1 })
    await produce(config, { transactional: true, steps: [{ end: 'commit', records: records(0, 100) }] })
    const follow = cli(['etl', 'follow'], { ...envOf(config), EVF_ETL_STALL_SEC: '5', EVF_LOG_LEVEL: 'info' })
    const exited = collect(follow)
    t.after(() => killTree(follow))
    await waitFor(
      'the transaction loaded',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) === 100,
      30_000,
    )
    // Longer than etlStallSec plus the watchdog's look every ~2 s: a stall would be logged by now.
    await sleep(10_000)
    follow.kill('SIGTERM')
    const guard = setTimeout(() => killTree(follow), 15_000)
    const { stderr } = await exited
    clearTimeout(guard)
    await assertLoadedOnce(pool, range(0, 100))
    const stalls = stderr.split('\n').filter((l) => l.includes('ETL stalled'))
    assert.deepEqual(stalls, [], 'no stall reported while nothing waits')
    await assertPositionAtEnd(config, pool)
  })

  it('headers (several, empty, null, a key twice) are no obstacle, and a dead letter keeps them', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const headers: Header[] = [
      ['trace-id', '4bf92f3577b34da6a3ce929d0e0e4736'],
      ['content-type', 'application/json'],
      ['empty', ''],
      ['nothing', null],
      ['twice', '1'],
      ['twice', '2'],
    ]
    const bad = JSON.stringify({ ...reading(1000, t0), booth_humidity: -5 })
    await produce(config, {
      steps: [
        {
          records: [
            ...records(0, 1000).map((r) => ({ ...r, headers })),
            {
              key: 'paint-bad',
              value: bad,
              headers: [
                ['trace-id', 'bad-one'],
                ['nothing', null],
              ],
            },
          ],
        },
      ],
    })
    const summary = await etlRun(config, pool)
    assert.equal(summary.loaded, 1000)
    assert.equal(summary.rejected, 1)
    await assertLoadedOnce(pool, range(0, 1000))
    const { rows } = await pool.query<{ reason_code: string; headers: Record<string, string> }>(
      'SELECT reason_code, headers FROM dead_letters',
    )
    assert.deepEqual(rows, [
      {
        reason_code: 'OUT_OF_PLAUSIBLE_RANGE',
        headers: { 'trace-id': Buffer.from('bad-one').toString('base64'), nothing: '' },
      },
    ])
  })

  it('null keys: records spread over the partitions, each loaded once', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    // Not sticky: each keyless record goes to a partition of librdkafka's choosing.
    const produced = await produce(config, {
      lingerMs: 20,
      sticky: 0,
      steps: [{ records: records(0, 1500, () => null) }],
    })
    assert.equal(produced.delivered, 1500)
    assert.equal(Object.keys(produced.steps[0]!.partitions).length, config.topicPartitions)
    const summary = await etlRun(config, pool)
    assert.equal(summary.loaded, 1500)
    assert.equal(summary.rejected, 0)
    await assertLoadedOnce(pool, range(0, 1500))
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)
    assert.equal(
      await count(pool, 'SELECT count(DISTINCT source_partition) AS n FROM sensor_data'),
      Object.keys(produced.steps[0]!.partitions).length,
    )
  })
})
