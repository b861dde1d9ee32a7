import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { parse, stringify } from 'yaml'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { type Config, loadConfig } from '../../src/config/index.ts'
import type { Pool } from '../../src/db/index.ts'
import { createAdmin, kafkaSecrets } from '../../src/kafka/index.ts'
import {
  type EmbeddedMqtt,
  freePort,
  startEmbeddedKafka,
  startEmbeddedMosquitto,
} from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { startServices } from '../../src/stack/index.ts'
import { cli, count, envOf, isolatedConfig, killTree, log, runCli, sleep, waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

/**
 * `evf ingest` reading plain-JSON MQTT topics from a real Mosquitto, published by Mosquitto's own
 * `mosquitto_pub` (not our code), into Kafka, loaded by `evf etl follow` into PostgreSQL.
 */

const FILTER = 'evf/test/chassis/+'
/** Readings dated a few minutes back, each sensor's 1 ms apart: the natural key (sensor, time) is unique. */
const BASE_SEC = Math.floor(Date.now() / 1000) - 600

const line = (seq: number) =>
  JSON.stringify({
    timestamp: BASE_SEC + seq / 1000,
    seq,
    line: 'L1',
    bolt_torque: 200,
    weld_current: 10,
    frame_alignment: 0,
  })

async function broker(t: TestContext): Promise<EmbeddedMqtt> {
  const dataDir = mkdtempSync(join(tmpdir(), 'evf-mqtt-'))
  const b = await startEmbeddedMosquitto({ dataDir, log })
  t.after(async () => {
    await b.stop()
    rmSync(dataDir, { recursive: true, force: true })
  })
  return b
}

/** The plant catalog with the chassis station fed by FILTER, applied as the next version. */
async function applyMqttCatalog(t: TestContext, config: Config): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'evf-mqtt-catalog-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const doc = parse(readFileSync(join(repoRoot, 'catalog', 'plant.yaml'), 'utf8'))
  const chassis = doc.lines[0].stations.find((s: { id: string }) => s.id === 'chassis')
  chassis.source = { type: 'mqtt', topic: FILTER }
  writeFileSync(join(dir, 'mqtt.yaml'), stringify(doc))
  const out = await runCli(['catalog', 'apply', join(dir, 'mqtt.yaml')], envOf(config))
  assert.match(out, /chassis: source changed/)
}

interface Child {
  child: ChildProcess
  output: () => string
}

function started(t: TestContext, child: ChildProcess): Child {
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (out += d))
  t.after(() => killTree(child))
  return { child, output: () => (out.length > 8000 ? `${out.slice(0, 4000)}\n…\n${out.slice(-4000)}` : out) }
}

const mqttEnv = (b: EmbeddedMqtt, user: 'ingest' | 'device') => ({
  EVF_MQTT_URL: b.url,
  EVF_MQTT_USERNAME: user,
  EVF_MQTT_PASSWORD: b.passwords[user],
})

/** `evf ingest` as a child, once it has subscribed (its session has the subscriptions from then on). */
async function ingest(t: TestContext, config: Config, b: EmbeddedMqtt, env: Record<string, string> = {}) {
  const c = started(
    t,
    cli(['ingest'], {
      ...envOf(config),
      ...mqttEnv(b, 'ingest'),
      EVF_LOG_LEVEL: 'info',
      EVF_MQTT_CLIENT_ID: `evf-ingest-${config.topicPrefix}`,
      ...env,
    }),
  )
  await waitFor('ingest subscribed', () => /MQTT subscribed/.test(c.output()), 30_000, { detail: c.output })
  return c
}

/** Debian's mosquitto_pub publishing each line written to it as one QoS 1 message on `topic`. */
function mosquittoPub(t: TestContext, b: EmbeddedMqtt, topic: string) {
  const { EVF_MQTT_USERNAME: u, EVF_MQTT_PASSWORD: p } = mqttEnv(b, 'device')
  const child = spawn(
    'mosquitto_pub',
    [
      '-h',
      '127.0.0.1',
      '-p',
      String(b.port),
      '-u',
      u,
      '-P',
      p,
      '-q',
      '1',
      '-V',
      'mqttv311',
      '-t',
      topic,
      '-l',
    ],
    {
      stdio: ['pipe', 'ignore', 'pipe'],
    },
  )
  let err = ''
  child.stderr?.on('data', (d) => (err += d))
  t.after(() => child.kill('SIGKILL'))
  const exited = new Promise<number | null>((resolve) => child.on('exit', resolve))
  return {
    write: (lines: string[]) =>
      new Promise<void>((resolve) =>
        child.stdin?.write(`${lines.join('\n')}\n`) ? resolve() : child.stdin?.once('drain', resolve),
      ),
    async end() {
      child.stdin?.end()
      const code = await exited
      assert.equal(code, 0, `mosquitto_pub: ${err}`)
    },
  }
}

/** Publishes seq 0..n-1 to each topic, `perTick` lines every `tickMs`, calling `at(seq)` as it goes. */
async function publishSteadily(
  t: TestContext,
  b: EmbeddedMqtt,
  topics: string[],
  n: number,
  perTick: number,
  tickMs: number,
  at: (seq: number) => Promise<void> = async () => {},
): Promise<void> {
  const pubs = topics.map((topic) => mosquittoPub(t, b, topic))
  for (let seq = 0; seq < n; seq += perTick) {
    const lines = Array.from({ length: Math.min(perTick, n - seq) }, (_, i) => line(seq + i))
    await Promise.all(pubs.map((p) => p.write(lines)))
    await at(seq)
    await sleep(tickMs)
  }
  await Promise.all(pubs.map((p) => p.end()))
}

async function exactlyOnce(pool: Pool, expected: number, what: string, detail: () => string): Promise<void> {
  const rows = () => count(pool, `SELECT count(*) AS n FROM sensor_data WHERE station = 'chassis'`)
  await waitFor(`${expected} rows (${what})`, async () => (await rows()) >= expected, 30_000, {
    everyMs: 500,
    detail,
  })
  await sleep(2000) // a double would arrive behind the last row
  assert.equal(await rows(), expected, `${what}: no reading twice`)
  assert.equal(
    await count(
      pool,
      `SELECT count(DISTINCT (data->>'sensor_id', data->>'seq')) AS n FROM sensor_data WHERE station = 'chassis'`,
    ),
    expected,
    `${what}: every (sensor, seq) once`,
  )
}

/** Records in the station topics now (the sum of their end offsets): what ingest has produced. */
async function kafkaRecords(admin: ReturnType<typeof createAdmin>, config: Config): Promise<number> {
  const partitions = Array.from({ length: config.topicPartitions }, (_, i) => ({
    partitionIndex: i,
    timestamp: -1n,
  }))
  const topics = catalogFromFile(config.catalog).topicsOf(config.topicPrefix)
  const listed = await admin.listOffsets({ topics: topics.map((name) => ({ name, partitions })) })
  return listed.reduce((n, topic) => n + topic.partitions.reduce((m, p) => m + Number(p.offset), 0), 0)
}

/** VmRSS of a process in MB. */
const rssMb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

/** A steady load from mosquitto_pub: `perTick` lines every 100 ms on each topic, until stopped. */
function steadyLoad(t: TestContext, b: EmbeddedMqtt, topics: string[], perTick: number) {
  const pubs = topics.map((topic) => mosquittoPub(t, b, topic))
  let stopping = false
  let sent = 0
  const running = (async () => {
    while (!stopping) {
      const lines = Array.from({ length: perTick }, (_, i) => line(sent + i))
      await Promise.all(pubs.map((p) => p.write(lines)))
      sent += perTick
      await sleep(100)
    }
    await Promise.all(pubs.map((p) => p.end()))
  })()
  return {
    /** Stops, and gives how many readings each topic got. */
    async stop(): Promise<number> {
      stopping = true
      await running
      return sent
    },
  }
}

describe('evf ingest from MQTT (plain JSON, QoS 1, persistent session)', () => {
  it('loads N mosquitto_pub messages exactly once across two kill -9 of ingest, and dead-letters a payload that is not JSON', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const b = await broker(t)
    await applyMqttCatalog(t, config)
    started(t, cli(['etl', 'follow'], envOf(config)))
    // MQTT 3.1.1 here (the others speak 5): Mosquitto's max_inflight_messages bounds what ingest holds.
    const v311 = { EVF_MQTT_PROTOCOL: '3.1.1' }
    let current = await ingest(t, config, b, v311)
    const n = 10_000
    const topics = ['evf/test/chassis/s1', 'evf/test/chassis/s2']
    const kills: number[] = []
    await publishSteadily(t, b, topics, n, 500, 150, async (seq) => {
      if (seq === 3000 || seq === 6500) {
        killTree(current.child)
        kills.push(seq)
        await sleep(300)
        current = await ingest(t, config, b, v311)
      }
    })
    assert.deepEqual(kills, [3000, 6500])
    const bad = mosquittoPub(t, b, 'evf/test/chassis/s3')
    await bad.write(['this is not json'])
    await bad.end()
    await exactlyOnce(pool, 2 * n, 'two kills', current.output)
    const admin = createAdmin(config, 'evf-test-offsets')
    const records = await kafkaRecords(admin, config).finally(() => admin.close())
    t.diagnostic(
      `${records - 2 * n - 1} readings produced again after a kill (redelivered, DUP), stored once`,
    )
    const dead = await waitFor(
      'the dead letter',
      async () =>
        (await pool.query(`SELECT reason_code, convert_from(message_value, 'UTF8') AS v FROM dead_letters`))
          .rows[0],
      20_000,
    )
    assert.deepEqual(dead, { reason_code: 'INVALID_JSON', v: 'this is not json' })
  })

  it('holds its PUBACKs while Kafka is down for 30 s under a steady load: RSS bounded, the connection kept, all loaded once after', async (t) => {
    const { config: isolated, pool } = await isolatedConfig(t)
    const dataDir = join(repoRoot, '.test-stack', `ingest-mqtt-${isolated.topicPrefix.replace('.', '')}`)
    rmSync(dataDir, { recursive: true, force: true })
    const [kafkaPort, controllerPort] = [await freePort(), await freePort()]
    const base = loadConfig(
      {
        databaseUrl: isolated.databaseUrl,
        topicPrefix: isolated.topicPrefix,
        etlGroupId: isolated.etlGroupId,
        logLevel: isolated.logLevel,
        dataDir,
        kafkaPort,
        kafkaControllerPort: controllerPort,
        kafkaHeapMb: 512,
      },
      {},
    )
    const services = await startServices(base, log)
    for (const password of Object.values(kafkaSecrets(dataDir))) rememberSecret(password)
    let stopServices = services.stop
    t.after(async () => {
      await stopServices()
      rmSync(dataDir, { recursive: true, force: true })
    })
    const config = { ...base, ...services.kafka.admin }
    const b = await broker(t)
    await applyMqttCatalog(t, config)
    const ing = await ingest(t, config, b, { EVF_MQTT_MAX_INFLIGHT: '1000' })
    const pid = ing.child.pid as number
    const load = steadyLoad(t, b, ['evf/test/chassis/s1', 'evf/test/chassis/s2'], 50) // 1,000 readings/s
    await sleep(5000)
    const before = Math.max(rssMb(pid), rssMb(pid))
    const acked = async () =>
      Number(
        (await pool.query(`SELECT acknowledged FROM ingest_sources WHERE source = 'mqtt'`)).rows[0]
          ?.acknowledged,
      )
    process.kill(Number(readFileSync(join(dataDir, 'kafka', 'broker.pid'), 'utf8')), 'SIGKILL')
    const outage = Date.now()
    let peak = 0
    const sampler = setInterval(() => (peak = Math.max(peak, rssMb(pid))), 1000)
    await sleep(6000)
    const ackedEarly = await acked()
    await sleep(outage + 30_000 - Date.now())
    const ackedLate = await acked()
    clearInterval(sampler)
    const broker2 = await startEmbeddedKafka({
      dataDir,
      port: kafkaPort,
      controllerPort,
      heapMb: 512,
      partitions: 3,
      log,
    })
    stopServices = async () => {
      await broker2.stop()
      await services.stop()
    }
    await sleep(3000)
    const perTopic = await load.stop()
    t.diagnostic(
      `RSS before the outage ${before.toFixed(0)} MB, peak during it ${peak.toFixed(0)} MB; ${2 * perTopic} readings`,
    )
    assert.equal(ackedLate, ackedEarly, 'no PUBACK while Kafka is down')
    assert.ok(peak < 2 * before + 50, `RSS bounded: peak ${peak} MB, before ${before} MB`)
    assert.doesNotMatch(ing.output(), /source disconnected/, 'the MQTT connection survived the outage')
    started(t, cli(['etl', 'follow'], envOf(config)))
    await exactlyOnce(pool, 2 * perTopic, 'Kafka down 30 s', ing.output)
  })

  it('carries the simulator’s MQTT devices end to end, and moves 100,000 queued readings into Kafka (measured)', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const b = await broker(t)
    const simEnv = { ...envOf(config), ...mqttEnv(b, 'device'), EVF_SIM_TRANSPORT: 'mqtt' }
    started(t, cli(['etl', 'follow'], envOf(config)))
    let ing = await ingest(t, config, b, { EVF_SIM_TRANSPORT: 'mqtt' })
    await runCli(['simulate', '--sim-transport', 'mqtt', '--sim-count', '5000'], simEnv)
    const rows = () => count(pool, 'SELECT count(*) AS n FROM sensor_data')
    await waitFor('5,000 rows', async () => (await rows()) >= 5000, 30_000, { detail: ing.output })
    // Queued in ingest's session while it is away, then taken at full speed.
    const exited = new Promise((resolve) => ing.child.once('exit', resolve))
    ing.child.kill('SIGTERM')
    await exited
    const n = 100_000
    const simStart = performance.now()
    await runCli(['simulate', '--sim-transport', 'mqtt', '--sim-count', String(n)], simEnv)
    const simRate = n / ((performance.now() - simStart) / 1000)
    const admin = createAdmin(config, 'evf-test-offsets')
    t.after(() => admin.close())
    const produced = await kafkaRecords(admin, config)
    const start = performance.now()
    ing = await ingest(t, config, b, { EVF_SIM_TRANSPORT: 'mqtt' })
    await waitFor(
      '100,000 readings in Kafka',
      async () => (await kafkaRecords(admin, config)) >= produced + n,
      60_000,
      {
        detail: ing.output,
      },
    )
    const rate = n / ((performance.now() - start) / 1000)
    t.diagnostic(
      `simulator → Mosquitto ${simRate.toFixed(0)} msg/s; Mosquitto → ingest → Kafka ${rate.toFixed(0)} msg/s (from process start)`,
    )
    await waitFor('105,000 rows', async () => (await rows()) >= 5000 + n, 60_000, {
      everyMs: 500,
      detail: ing.output,
    })
    await sleep(2000)
    assert.equal(await rows(), 5000 + n, 'every reading once')
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)
    assert.ok(simRate >= 10_000, `the simulator publishes ≥ 10,000 msg/s (${simRate.toFixed(0)})`)
    assert.ok(rate >= 10_000, `ingest moves ≥ 10,000 msg/s (${rate.toFixed(0)})`)
  })
})
