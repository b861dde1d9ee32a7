import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { parse, stringify } from 'yaml'
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

describe('evf ingest from MQTT (plain JSON, QoS 1, persistent session)', () => {
  it('loads N mosquitto_pub messages exactly once across two kill -9 of ingest, and dead-letters a payload that is not JSON', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const b = await broker(t)
    await applyMqttCatalog(t, config)
    started(t, cli(['etl', 'follow'], envOf(config)))
    let current = await ingest(t, config, b)
    const n = 10_000
    const topics = ['evf/test/chassis/s1', 'evf/test/chassis/s2']
    const kills: number[] = []
    await publishSteadily(t, b, topics, n, 500, 150, async (seq) => {
      if (seq === 3000 || seq === 6500) {
        killTree(current.child)
        kills.push(seq)
        await sleep(300)
        current = await ingest(t, config, b)
      }
    })
    assert.deepEqual(kills, [3000, 6500])
    const bad = mosquittoPub(t, b, 'evf/test/chassis/s3')
    await bad.write(['this is not json'])
    await bad.end()
    await exactlyOnce(pool, 2 * n, 'two kills', current.output)
    const dead = await waitFor(
      'the dead letter',
      async () =>
        (await pool.query(`SELECT reason_code, convert_from(message_value, 'UTF8') AS v FROM dead_letters`))
          .rows[0],
      20_000,
    )
    assert.deepEqual(dead, { reason_code: 'INVALID_JSON', v: 'this is not json' })
  })
})
