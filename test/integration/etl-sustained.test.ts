// @alone: it measures commit gaps and fairness under 10,000 readings/s; a neighbour's CPU would be its failure
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { Kafka, logLevel } from 'kafkajs'
import { brokerList } from '../../src/kafka/index.ts'
import { cli, collect, count, envOf, isolatedConfig, killTree, sleep, waitFor } from '../helpers.ts'
import { allTopics } from '../plant.ts'

/** Offered load: 4 stations × 250 sensors every 100 ms = 10,000 readings/s, for 30 s (the stall was seen from 5,000/s). */
const SENSORS_PER_STATION = 250
const INTERVAL_MS = 100
const PRODUCE_SEC = 30
/** Longest pause between two commits tolerated while messages wait (the stall seen was forever). */
const MAX_GAP_MS = 10_000
/** After production stops, the backlog must be gone within this. */
const DRAIN_MS = 120_000

describe('etl follow under a sustained, paced load', () => {
  it('keeps committing while a producer writes 10,000 readings/s for 30 s, and loads each exactly once', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const env = envOf(config)
    // Offsets counted by an independent client (kafkajs), not by our own Kafka code.
    const kafka = new Kafka({
      brokers: brokerList(config.kafkaBrokers),
      sasl: { mechanism: 'scram-sha-512', username: config.kafkaUsername, password: config.kafkaPassword },
      logLevel: logLevel.NOTHING,
    })
    const admin = kafka.admin()
    await admin.connect()
    t.after(() => admin.disconnect())
    const produced = async () => {
      let n = 0
      for (const topic of allTopics(config.topicPrefix))
        for (const p of await admin.fetchTopicOffsets(topic)) n += Number(p.high) - Number(p.low)
      return n
    }
    const stored = () =>
      count(pool, 'SELECT (SELECT count(*) FROM sensor_data) + (SELECT count(*) FROM dead_letters) AS n')

    const etl = cli(['etl', 'follow'], env)
    const etlExit = collect(etl)
    t.after(() => etl.kill('SIGKILL'))
    const sim = cli(['simulate'], {
      ...env,
      EVF_SIM_SENSORS_PER_STATION: String(SENSORS_PER_STATION),
      EVF_SIM_INTERVAL_MS: String(INTERVAL_MS),
      EVF_SIM_DURATION_SEC: String(PRODUCE_SEC),
    })
    t.after(() => sim.kill('SIGKILL'))
    const simExit = collect(sim)
    let simDone = false
    void simExit.then(() => {
      simDone = true
    })

    // Watch: the committed total must move at least every MAX_GAP_MS while Kafka holds more.
    let last = -1
    let lastMoveAt = Date.now()
    let longestGapMs = 0
    let gapAt = 0
    const deadline = Date.now() + (PRODUCE_SEC + 15) * 1000 + DRAIN_MS
    for (;;) {
      await sleep(250)
      const [inKafka, loaded] = await Promise.all([produced(), stored()])
      const now = Date.now()
      if (loaded !== last) {
        last = loaded
        lastMoveAt = now
      } else if (inKafka > loaded && now - lastMoveAt > longestGapMs) {
        longestGapMs = now - lastMoveAt
        gapAt = loaded
      }
      if (simDone && inKafka === loaded) break
      if (now > deadline || longestGapMs > MAX_GAP_MS) break
    }
    const sim_ = await simExit
    assert.equal(sim_.code, 0, `the simulator failed: ${sim_.stderr.slice(-2000)}`)
    const total = await produced()
    assert.ok(
      total >= SENSORS_PER_STATION * 4 * (PRODUCE_SEC * 0.8) * (1000 / INTERVAL_MS),
      `produced only ${total}`,
    )
    assert.ok(
      longestGapMs <= MAX_GAP_MS,
      `no commit for ${longestGapMs} ms while messages waited (stuck at ${gapAt} of ${total})`,
    )
    assert.equal(await stored(), total, 'every message is loaded or dead-lettered')
    // No doubles, counted by the simulator's own identity of a reading (sensor, seq).
    assert.equal(
      await count(pool, "SELECT count(DISTINCT (data->>'sensor_id', data->>'seq')) AS n FROM sensor_data"),
      await count(pool, 'SELECT count(*) AS n FROM sensor_data'),
      'no reading stored twice',
    )
    etl.kill('SIGTERM')
    assert.equal((await etlExit).code, 0)
  })

  it("does not starve one topic behind another topic's backlog", async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const env = envOf(config)
    const produce = async (station: string, n: number) => {
      const r = await collect(
        cli(['simulate'], { ...env, EVF_SIM_STATIONS: station, EVF_SIM_COUNT: String(n) }),
      )
      assert.equal(r.code, 0, r.stderr.slice(-2000))
    }
    // The first topic fetched holds a backlog of 300,000 readings; the last holds 20.
    await produce('chassis', 300_000)
    await produce('quality', 20)
    const etl = cli(['etl', 'follow'], env)
    const etlExit = collect(etl)
    t.after(() => killTree(etl))
    let rowsWhenQualityLoaded = 0
    await waitFor(
      'the quality readings',
      async () => {
        const { rows } = await pool.query<{ all: string; quality: string }>(
          "SELECT count(*) AS all, count(*) FILTER (WHERE station = 'quality') AS quality FROM sensor_data",
        )
        rowsWhenQualityLoaded = Number(rows[0]!.all)
        return Number(rows[0]!.quality) === 20
      },
      120_000,
    )
    // Fair fetches: every partition gets its share of each fetch, whatever the others hold.
    assert.ok(
      rowsWhenQualityLoaded < 150_000,
      `the 20 quality readings waited until ${rowsWhenQualityLoaded} chassis readings were loaded`,
    )
    etl.kill('SIGTERM')
    assert.equal((await etlExit).code, 0)
  })

  it('hands partitions over between workers joining and leaving under load without a collision', async (t) => {
    const { config, pool } = await isolatedConfig(t, { topicPartitions: 6 })
    const env = { ...envOf(config), EVF_LOG_LEVEL: 'info' }
    const workers: ReturnType<typeof cli>[] = []
    const logs: Promise<{ stdout: string; stderr: string }>[] = []
    t.after(() => {
      for (const w of workers) killTree(w)
    })
    const start = () => {
      const w = cli(['etl', 'follow'], env)
      workers.push(w)
      logs.push(collect(w))
    }
    const sim = cli(['simulate'], {
      ...env,
      EVF_SIM_SENSORS_PER_STATION: '50',
      EVF_SIM_INTERVAL_MS: '100',
      EVF_SIM_DURATION_SEC: '40',
    })
    const simExit = collect(sim)
    t.after(() => sim.kill('SIGKILL'))
    const stored = () =>
      count(pool, 'SELECT (SELECT count(*) FROM sensor_data) + (SELECT count(*) FROM dead_letters) AS n')
    /** The group has gone on loading (5 s of the 2,000 readings/s) since the last change. */
    const loadsOn = async (what: string) => {
      const mark = await stored()
      await waitFor(`loading to go on after ${what}`, async () => (await stored()) > mark + 10_000, 60_000)
    }
    start()
    await loadsOn('the first worker started')
    start()
    await loadsOn('a second worker joined')
    start()
    await loadsOn('a third worker joined')
    workers[1]!.kill('SIGTERM') // leaves the group cleanly: its partitions move to the others
    const sim_ = await simExit
    assert.equal(sim_.code, 0, sim_.stderr.slice(-2000))
    const produced = Number(/"produced":(\d+)/.exec(sim_.stderr)?.[1] ?? 0)
    await waitFor('every reading stored', async () => (await stored()) >= produced, 120_000)
    for (const w of workers) w.kill('SIGTERM')
    const out = (await Promise.all(logs)).map((l) => l.stdout + l.stderr).join('\n')
    assert.equal(await stored(), produced, 'each reading once')
    // A worker given a partition must start from the stored position, never load rows another
    // worker committed: no unique-key collision, no worker failing and leaving the group.
    assert.doesNotMatch(out, /duplicate key value/)
    assert.doesNotMatch(out, /"msg":"ETL failed; retrying"/)
  })
})
