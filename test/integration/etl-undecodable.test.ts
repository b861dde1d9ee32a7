/**
 * A record batch the Kafka client cannot decode (issue 19): one partition is held back at it,
 * named in the logs, /ready and /metrics, while every other partition loads; `evf etl skip`
 * moves past it deliberately, keeping its raw bytes as a dead letter, and nothing else is lost or
 * doubled. The batch is written by a test producer (zstd), then corrupted where the broker keeps
 * it, as a disk or a broken producer would leave it: the broker validated it when it was written,
 * and serves the stored bytes as they are.
 */
import assert from 'node:assert/strict'
import { open, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import type { Config } from '../../src/config/index.ts'
import { createProducer } from '../../src/kafka/index.ts'
import { cli, collect, count, envOf, isolatedConfig, killTree, waitFor } from '../helpers.ts'
import { topicFor } from '../plant.ts'

/** Bytes of a v2 record batch's header: where its (compressed) records start. */
const BATCH_HEADER = 61
const ZSTD = 4

let seq = 0
const reading = (station: 'paint' | 'battery') =>
  station === 'paint'
    ? {
        station,
        sensor_id: 'paint-01',
        seq: ++seq,
        timestamp: Date.now() / 1000,
        booth_temp: 22,
        booth_humidity: 60,
        paint_thickness: 1.1,
      }
    : {
        station,
        sensor_id: 'battery-01',
        seq: ++seq,
        timestamp: Date.now() / 1000,
        cell_voltage: 3.65,
        module_temp: 25,
        insulation_resistance: 900,
      }

/** One batch per call: `n` readings to one partition, with the given codec. */
async function send(
  config: Config,
  station: 'paint' | 'battery',
  partition: number,
  n: number,
  compression?: 'zstd',
) {
  const producer = createProducer(config, 'evf-test-undecodable')
  try {
    await producer.send({
      messages: Array.from({ length: n }, () => {
        const r = reading(station)
        return {
          topic: topicFor(station, config.topicPrefix),
          partition,
          key: Buffer.from(r.sensor_id),
          value: Buffer.from(JSON.stringify(r)),
        }
      }),
      ...(compression ? { compression } : {}),
    })
  } finally {
    await producer.close()
  }
}

/** Overwrites the start of the zstd frame of the partition's compressed batch; returns that batch's bytes as now stored. */
async function corruptZstdBatch(topic: string, partition: number): Promise<Buffer> {
  const dir = process.env.EVF_TEST_KAFKA_DATA
  assert.ok(dir, 'EVF_TEST_KAFKA_DATA is set by npm test')
  const file = join(dir, `${topic}-${partition}`, '00000000000000000000.log')
  const log = await readFile(file)
  for (let at = 0; at + BATCH_HEADER <= log.length; at += 12 + log.readInt32BE(at + 8)) {
    if ((log.readInt16BE(at + 21) & 7) !== ZSTD) continue
    const handle = await open(file, 'r+')
    try {
      await handle.write(Buffer.from('not zstd'), 0, 8, at + BATCH_HEADER)
    } finally {
      await handle.close()
    }
    const stored = await readFile(file)
    return stored.subarray(at, at + 12 + stored.readInt32BE(at + 8))
  }
  throw new Error(`no zstd batch in ${file}`)
}

describe('a record batch the client cannot decode', () => {
  it('holds back its partition only, says so, and `evf etl skip` moves past it into a dead letter', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 3 })
    const paint = topicFor('paint', config.topicPrefix)
    // paint[0]: offsets 0–4 plain, 5–9 one zstd batch (to be corrupted), 10–14 plain.
    await send(config, 'paint', 0, 5)
    await send(config, 'paint', 0, 5, 'zstd')
    await send(config, 'paint', 0, 5)
    await send(config, 'paint', 1, 10)
    await send(config, 'paint', 2, 10)
    await send(config, 'battery', 0, 10)
    const stored = await corruptZstdBatch(paint, 0)

    // A bounded run loads everything else, then fails with the new code, naming the batch.
    const run = await collect(cli(['etl', 'run'], envOf(config)))
    assert.equal(run.code, 10, `etl run exits 10 (KAFKA_UNDECODABLE_BATCH): ${run.stderr.slice(-2000)}`)
    assert.match(run.stderr, new RegExp(`${paint.replace('.', '\\.')}\\[0\\] at offsets 5–9`))
    assert.doesNotMatch(run.stderr, /KAFKA_UNREACHABLE/)
    const rows = () => count(pool, 'SELECT count(*) AS n FROM sensor_data')
    assert.equal(
      await rows(),
      5 + 10 + 10 + 10,
      'everything but the batch and what follows it in its partition',
    )
    assert.equal(
      await count(pool, 'SELECT count(*) AS n FROM dead_letters'),
      0,
      'nothing dead-lettered without a decision',
    )

    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    const ready = await app.inject({ url: '/ready' })
    assert.equal(ready.statusCode, 503)
    const held = ready.json().etl.stalled_partitions.find((p: { topic: string }) => p.topic === paint)
    assert.equal(held?.partition, 0)
    assert.match(held?.reason ?? '', /offsets 5–9 cannot be decoded/)
    const metrics = (await app.inject({ url: '/metrics' })).body
    assert.match(metrics, new RegExp(`evf_etl_partition_blocked\\{topic="${paint}",partition="0"\\} 1`))

    // The continuous ETL holds it back too, and keeps loading the other partitions meanwhile.
    const follow = cli(['etl', 'follow'], envOf(config))
    t.after(() => killTree(follow))
    await send(config, 'paint', 1, 10)
    await waitFor('paint[1] loaded while paint[0] is held back', async () => (await rows()) === 45, 30_000)

    const notHeld = await collect(cli(['etl', 'skip', '--topic', paint, '--partition', '1'], envOf(config)))
    assert.equal(notHeld.code, 2, 'a partition not held back is refused')
    const skip = await collect(cli(['etl', 'skip', '--topic', paint, '--partition', '0'], envOf(config)))
    assert.equal(skip.code, 0, skip.stderr)
    assert.deepEqual(
      { ...JSON.parse(skip.stdout), deadLetterId: 0 },
      {
        topic: paint,
        partition: 0,
        firstOffset: '5',
        lastOffset: '9',
        bytes: stored.length,
        deadLetterId: 0,
      },
    )
    const { rows: letters } = await pool.query(
      'SELECT "offset"::int AS offset, reason_code, message_value FROM dead_letters WHERE topic = $1',
      [paint],
    )
    assert.equal(letters.length, 1)
    assert.equal(letters[0].offset, 5)
    assert.equal(letters[0].reason_code, 'UNDECODABLE_BATCH')
    assert.ok(
      Buffer.compare(letters[0].message_value, stored) === 0,
      'the dead letter keeps the batch’s bytes as stored',
    )

    // The follower re-seeks by itself and loads what came after the batch: nothing lost, nothing twice.
    await waitFor('paint[0] loaded past the skipped batch', async () => (await rows()) === 50, 30_000)
    const offsets = await pool.query<{ o: number }>(
      'SELECT source_offset::int AS o FROM sensor_data WHERE source_topic = $1 AND source_partition = 0 ORDER BY 1',
      [paint],
    )
    assert.deepEqual(
      offsets.rows.map((r) => r.o),
      [0, 1, 2, 3, 4, 10, 11, 12, 13, 14],
    )
    assert.equal(
      await count(
        pool,
        'SELECT count(DISTINCT (source_topic, source_partition, source_offset)) AS n FROM sensor_data',
      ),
      50,
    )
    await waitFor(
      '/ready to stop naming the partition',
      async () => {
        const r = (await app.inject({ url: '/ready' })).json()
        return !r.etl.stalled_partitions.some((p: { reason: string | null }) => p.reason)
      },
      10_000,
    )
    follow.kill('SIGTERM')
  })
})
