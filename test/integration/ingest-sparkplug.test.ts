/**
 * `evf ingest` as a Sparkplug B 3.0 host application against a real Mosquitto 2, with readings
 * loaded by `evf etl follow` into PostgreSQL. The edge node of the first test is one we did not
 * write: Eclipse Tahu's JavaScript edge client (`sparkplug-client`). The second runs the
 * simulator's own edge nodes (`evf simulate --sim-transport sparkplug`).
 */
import assert from 'node:assert/strict'
import type { ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { connect, type MqttClient } from 'mqtt'
import sparkplugClient from 'sparkplug-client'
import sparkplugPayload from 'sparkplug-payload'
import { stringify } from 'yaml'
import type { Config } from '../../src/config/index.ts'
import type { Pool } from '../../src/db/index.ts'
import { startEmbeddedMosquitto } from '../../src/services/index.ts'
import { cli, count, envOf, isolatedConfig, killTree, log, runCli, waitFor } from '../helpers.ts'
import { plant } from '../plant.ts'

const codec = sparkplugPayload.get('spBv1.0')!

/** A broker of its own in a temporary directory, stopped and removed after the test. */
async function broker(t: TestContext) {
  const dir = mkdtempSync(join(tmpdir(), 'evf-spb-'))
  const mqtt = await startEmbeddedMosquitto({ dataDir: dir, log })
  t.after(async () => {
    await mqtt.stop()
    rmSync(dir, { recursive: true, force: true })
  })
  return { ...mqtt, dir }
}

/** A child that is stopped (SIGTERM, then SIGKILL after 15 s) after the test, and its output. */
function child(t: TestContext, proc: ChildProcess) {
  let output = ''
  proc.stdout?.on('data', (d) => (output += d))
  proc.stderr?.on('data', (d) => (output += d))
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)))
  t.after(async () => {
    if (proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGTERM')
    const timer = setTimeout(() => killTree(proc), 15_000)
    await exited
    clearTimeout(timer)
  })
  return { proc, exited, output: () => output.slice(-4000) }
}

/** An MQTT client as user `ingest` that keeps every message of `topics` it sees. */
async function watcher(t: TestContext, url: string, password: string, topics: string[]) {
  const client: MqttClient = connect(url, { username: 'ingest', password, clientId: `watch-${Date.now()}` })
  t.after(() => client.endAsync())
  const seen: { topic: string; payload: Buffer; retain: boolean }[] = []
  client.on('message', (topic, payload, packet) => seen.push({ topic, payload, retain: packet.retain }))
  await new Promise((r) => client.once('connect', r))
  await client.subscribeAsync(topics, { qos: 1 })
  return { client, seen }
}

/** The retained STATE of host `evf` as a fresh subscriber gets it (undefined: none within 2 s). */
async function retainedState(
  url: string,
  password: string,
): Promise<{ online: boolean; timestamp: number } | undefined> {
  const client = connect(url, {
    username: 'ingest',
    password,
    clientId: `state-${Date.now()}`,
    reconnectPeriod: 0,
  })
  try {
    await new Promise((resolve, reject) => {
      client.once('connect', resolve)
      client.once('error', reject)
    })
    let timer: NodeJS.Timeout | undefined
    const got = new Promise<Buffer | undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), 2_000)
      client.once('message', (_t, p) => resolve(p))
    })
    await client.subscribeAsync('spBv1.0/STATE/evf', { qos: 1 })
    const payload = await got
    clearTimeout(timer)
    return payload && JSON.parse(payload.toString())
  } finally {
    await client.endAsync()
  }
}

function ingestEnv(config: Config, url: string, password: string) {
  return { ...envOf(config), EVF_MQTT_URL: url, EVF_MQTT_USERNAME: 'ingest', EVF_MQTT_PASSWORD: password }
}

const rows = (pool: Pool, sensor: string) =>
  pool
    .query<{ t: number; h: number; ts: number }>(
      `SELECT (data->>'booth_temp')::float8 AS t, (data->>'booth_humidity')::float8 AS h,
              extract(epoch FROM reading_time)::float8 AS ts
         FROM sensor_data WHERE station = 'paint' AND data->>'sensor_id' = $1 ORDER BY reading_time`,
      [sensor],
    )
    .then((r) => r.rows)

describe('evf ingest as a Sparkplug B host application', () => {
  it('follows an Eclipse Tahu edge node: births and aliases loaded, a seq gap answered by a rebirth request, NDEATH makes its sensors stale, STATE online then offline', {
    timeout: 120_000,
  }, async (t) => {
    const mqtt = await broker(t)
    const { config, pool } = await isolatedConfig(t)
    // The catalog names the edge node; booth_temp comes from a metric of another name.
    const doc = structuredClone(plant.document)
    const paint = doc.lines.flatMap((l) => l.stations).find((s) => s.id === 'paint')!
    paint.source = {
      type: 'sparkplug',
      group: 'plant',
      node: 'edge1',
      metrics: { booth_temp: 'Booth/Temperature' },
    }
    const file = join(mqtt.dir, 'catalog.yaml')
    writeFileSync(file, stringify(doc))
    await runCli(['catalog', 'apply', file], envOf(config))

    const watch = await watcher(t, mqtt.url, mqtt.passwords.ingest, ['spBv1.0/plant/NCMD/#'])
    const ingest = child(t, cli(['ingest'], ingestEnv(config, mqtt.url, mqtt.passwords.ingest)))
    child(t, cli(['etl', 'follow'], envOf(config)))
    const online = await waitFor(
      'the host’s online STATE',
      async () => {
        const s = await retainedState(mqtt.url, mqtt.passwords.ingest)
        return s?.online ? s : undefined
      },
      20_000,
      { retryErrors: true, detail: ingest.output },
    )

    // Tahu's edge node, as a plant would run it (user `device`).
    const edge = sparkplugClient.newClient({
      serverUrl: mqtt.url,
      username: 'device',
      password: mqtt.passwords.device,
      groupId: 'plant',
      edgeNode: 'edge1',
      clientId: 'tahu-edge1',
      version: 'spBv1.0',
    })
    t.after(() => edge.stop())
    const t0 = Math.floor(Date.now() / 1000) - 300
    let tick = 0
    const values = { 'booth-1': [22.0, 60.0, 1.15], 'booth-2': [23.0, 61.0, 1.2] }
    const names = ['Booth/Temperature', 'booth_humidity', 'paint_thickness']
    const aliases = { 'booth-1': [1, 2, 3], 'booth-2': [4, 5, 6] }
    const births = () => {
      const timestamp = (t0 + tick++) * 1000
      edge.publishNodeBirth({
        timestamp,
        metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: false }],
      })
      for (const device of ['booth-1', 'booth-2'] as const)
        edge.publishDeviceBirth(device, {
          timestamp,
          metrics: names.map((name, i) => ({
            name,
            alias: aliases[device][i],
            type: 'Double',
            value: values[device][i],
            timestamp,
          })),
        })
    }
    const ncmds: unknown[] = []
    edge.on('ncmd', (payload) => {
      ncmds.push(payload)
      if (payload.metrics?.some((m) => m.name === 'Node Control/Rebirth' && m.value === true)) births()
    })
    const ddata = (device: 'booth-1' | 'booth-2', temp: number) => {
      const timestamp = (t0 + tick++) * 1000
      values[device][0] = temp
      edge.publishDeviceData(device, {
        timestamp,
        metrics: [{ alias: aliases[device][0], type: 'Double', value: temp }],
      })
      return timestamp / 1000
    }
    await new Promise<void>((r) => edge.once('birth', () => r()))
    births()
    for (const temp of [22.1, 22.2, 22.3]) ddata('booth-1', temp)
    ddata('booth-2', 23.5)
    await waitFor(
      'the births and data loaded',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) === 6,
      30_000,
      { detail: ingest.output },
    )
    assert.deepEqual(
      (await rows(pool, 'booth-1')).map((r) => [r.t, r.h]),
      [
        [22, 60],
        [22.1, 60],
        [22.2, 60],
        [22.3, 60],
      ],
    )
    assert.deepEqual(
      (await rows(pool, 'booth-2')).map((r) => [r.t, r.h]),
      [
        [23, 61],
        [23.5, 61],
      ],
    )

    // A forced gap: Tahu's client numbers its messages in a private field.
    ;(edge as unknown as { seq: number }).seq += 3
    const ignored = ddata('booth-1', 29.9)
    await waitFor('the rebirth request', () => watch.seen.length > 0 && ncmds.length > 0, 10_000, {
      detail: ingest.output,
    })
    const ncmd = codec.decodePayload(watch.seen[0]!.payload)
    assert.equal(watch.seen[0]!.topic, 'spBv1.0/plant/NCMD/edge1')
    assert.deepEqual(
      ncmd.metrics?.map((m) => [m.name, m.value]),
      [['Node Control/Rebirth', true]],
    )
    await waitFor('the rebirth loaded', async () => (await rows(pool, 'booth-2')).length === 3, 20_000)
    ddata('booth-1', 24.4)
    await waitFor(
      'data after the rebirth',
      async () => (await rows(pool, 'booth-1')).some((r) => r.t === 24.4),
      20_000,
      { detail: ingest.output },
    )
    const booth1 = await rows(pool, 'booth-1')
    // The message after the gap is ignored; the rebirth carries its value as the current one, at the rebirth's time.
    assert.deepEqual(
      booth1.map((r) => r.t),
      [22, 22.1, 22.2, 22.3, 29.9, 24.4],
    )
    assert.ok(booth1[4]!.ts > ignored, 'the 29.9 loaded is the rebirth’s, not the ignored message')
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)

    // NDEATH: the edge node's connection dies (no DISCONNECT): the broker publishes its will.
    const tahu = edge as unknown as { client: { stream: { destroy(): void }; end(force: boolean): void } }
    tahu.client.stream.destroy()
    tahu.client.end(true)
    const stale = await waitFor(
      'the sensors stale',
      async () => {
        const r = await pool.query<{ sensor_id: string; reason: string }>(
          `SELECT sensor_id, reason FROM sensor_states WHERE station = 'paint' AND stale ORDER BY sensor_id`,
        )
        return r.rows.length === 2 ? r.rows : undefined
      },
      10_000,
      { detail: ingest.output },
    )
    assert.deepEqual(stale, [
      { sensor_id: 'booth-1', reason: 'NDEATH bdSeq 0' },
      { sensor_id: 'booth-2', reason: 'NDEATH bdSeq 0' },
    ])

    ingest.proc.kill('SIGTERM')
    assert.equal(await ingest.exited, 0, ingest.output())
    assert.deepEqual(await retainedState(mqtt.url, mqtt.passwords.ingest), {
      online: false,
      timestamp: online.timestamp,
    })
    const source = await pool.query<{ connected: boolean; missed: string; produced: string }>(
      `SELECT connected, missed, produced FROM ingest_sources WHERE source = 'sparkplug'`,
    )
    assert.equal(source.rows[0]?.connected, false)
    assert.equal(Number(source.rows[0]?.missed), 4, 'the gap of 3 and the message after it')
    assert.equal(Number(source.rows[0]?.produced), 9, '6, the rebirth’s 2 DBIRTHs, 1 after')
  })

  it('brings in the simulator as Sparkplug edge nodes: every reading of `evf simulate --sim-transport sparkplug` loaded once', {
    timeout: 120_000,
  }, async (t) => {
    const mqtt = await broker(t)
    const { config, pool } = await isolatedConfig(t)
    const env = { ...ingestEnv(config, mqtt.url, mqtt.passwords.ingest), EVF_SIM_TRANSPORT: 'sparkplug' }
    const ingest = child(t, cli(['ingest'], env))
    child(t, cli(['etl', 'follow'], envOf(config)))
    await waitFor(
      'the host online',
      async () => (await retainedState(mqtt.url, mqtt.passwords.ingest))?.online,
      20_000,
      {
        retryErrors: true,
        detail: ingest.output,
      },
    )
    const started = Date.now()
    const sim = child(
      t,
      cli(['simulate', '--sim-transport', 'sparkplug', '--sim-count', '2000'], {
        ...envOf(config),
        EVF_MQTT_URL: mqtt.url,
        EVF_MQTT_USERNAME: 'device',
        EVF_MQTT_PASSWORD: mqtt.passwords.device,
      }),
    )
    assert.equal(await sim.exited, 0, sim.output())
    await waitFor(
      '2,000 rows',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) >= 2000,
      30_000,
      {
        detail: ingest.output,
      },
    )
    log.info({ ms: Date.now() - started }, 'simulated to loaded')
    await new Promise((r) => setTimeout(r, 1_000))
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 2000)
    assert.equal(
      await count(
        pool,
        `SELECT count(DISTINCT (station, data->>'sensor_id', reading_time)) AS n FROM sensor_data`,
      ),
      2000,
      'no reading twice',
    )
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 0)
    assert.equal(
      await count(pool, 'SELECT count(DISTINCT station) AS n FROM sensor_data'),
      plant.stations.length,
    )
    // The simulator's edge nodes said NDEATH when it stopped: their sensors are stale.
    await waitFor(
      'the simulated sensors stale',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_states WHERE stale')) === 8,
      10_000,
    )
  })
})
