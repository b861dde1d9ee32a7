// @alone: the whole stack with the simulator as MQTT devices and an edge node we did not write
/**
 * The plant's machines through `npm start` (issue 23): `stack up --sim-transport mqtt` starts
 * Mosquitto and `evf ingest`; the simulator publishes its readings as MQTT devices, and a fifth
 * station, a welding cell, is an Eclipse Tahu Sparkplug B edge node (`sparkplug-client`), mapped
 * in the catalog. ingest is killed with SIGKILL under load: the stack restarts it and no reading
 * is lost or doubled. The edge node dies: its sensor is stale in the API and on the dashboard
 * (Chromium).
 */
import assert from 'node:assert/strict'
import { readFileSync, writeFileSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import type { Browser } from 'playwright-core'
import sparkplugClient from 'sparkplug-client'
import { stringify } from 'yaml'
import { newLoginUrl } from '../../src/api/tokens.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { childPids } from '../../src/shared/process.ts'
import { launchChromium } from '../browser/helpers.ts'
import { sleep, waitFor } from '../helpers.ts'
import { withWelding } from '../plant.ts'
import { rememberSecret } from '../secrets.ts'
import { type GroupChild, killGroup, stackUp } from './group.ts'

const dataDir = join(repoRoot, '.test-stack', 'e2e-devices')

const ingestPid = (stackPid: number) =>
  childPids(stackPid).find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes('ingest')
    } catch {
      return false
    }
  })

describe('real machines through npm start', () => {
  let stack: GroupChild
  let db: pg.Client
  let base: string
  let browser: Browser | undefined
  let edge: ReturnType<typeof sparkplugClient.newClient> | undefined
  let born: Promise<void> | undefined
  const count = async (sql: string, params: unknown[] = []) =>
    Number((await db.query<{ n: string }>(sql, params)).rows[0]!.n)

  before(async () => {
    await rm(dataDir, { recursive: true, force: true })
    await mkdir(dataDir, { recursive: true })
    const doc = withWelding({ sensors: ['weld-01'] })
    doc.lines[0]!.stations.find((s) => s.id === 'welding')!.source = {
      type: 'sparkplug',
      group: 'bodyshop',
      node: 'weld-edge',
    }
    const catalog = join(dataDir, 'catalog.yaml')
    writeFileSync(catalog, stringify(doc))
    const [apiPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort()]
    stack = stackUp(
      [
        ...['--data-dir', dataDir, '--kafka-port', String(kafkaPort)],
        ...['--kafka-controller-port', String(controllerPort), '--api-port', String(apiPort)],
      ],
      {
        EVF_CATALOG: catalog,
        EVF_SIM_TRANSPORT: 'mqtt',
        EVF_SIM_STATIONS: 'chassis,battery,paint,quality',
        EVF_SIM_INTERVAL_MS: '100',
        EVF_SIM_SENSORS_PER_STATION: '5',
        EVF_SIM_FAULT_RATE: '0',
      },
    )
    await waitFor(
      'the stack banner',
      async () => (stack.output().includes('pipeline is up') ? true : undefined),
      180_000,
      {
        everyMs: 500,
        detail: () => stack.output().slice(-4000),
      },
    )
    assert.match(stack.output(), /MQTT\s+mqtt:\/\/127\.0\.0\.1:\d+ \(embedded Mosquitto/)
    base = `http://127.0.0.1:${apiPort}`
    const { databaseUrl } = JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8')) as {
      databaseUrl: string
    }
    db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    const passwords = JSON.parse(readFileSync(join(dataDir, 'secrets', 'mqtt.json'), 'utf8')) as Record<
      string,
      string
    >
    for (const p of Object.values(passwords)) rememberSecret(p)
    const mqttUrl = /MQTT\s+(mqtt:\/\/127\.0\.0\.1:\d+)/.exec(stack.output())![1]!
    edge = sparkplugClient.newClient({
      serverUrl: mqttUrl,
      username: 'device',
      password: passwords.device!,
      groupId: 'bodyshop',
      edgeNode: 'weld-edge',
      clientId: 'tahu-weld-edge',
      version: 'spBv1.0',
    })
    const e = edge
    born = new Promise<void>((r) => e.once('birth', () => r()))
  })
  after(async () => {
    edge?.stop()
    await browser?.close()
    await db?.end()
    killGroup(stack?.child.pid, 'SIGINT')
    const timer = setTimeout(() => killGroup(stack?.child.pid, 'SIGKILL'), 60_000)
    await stack?.exited
    clearTimeout(timer)
  })

  it('loads the simulator’s MQTT devices once each, across a kill -9 of evf ingest', async () => {
    await waitFor(
      'readings through MQTT',
      async () => (await count('SELECT count(*) AS n FROM sensor_data')) > 2000,
      60_000,
      {
        detail: () => stack.output().slice(-3000),
      },
    )
    const pid = ingestPid(stack.child.pid!)
    assert.ok(pid, 'evf ingest runs under the stack')
    process.kill(pid, 'SIGKILL')
    await waitFor(
      'ingest restarted',
      async () => {
        const next = ingestPid(stack.child.pid!)
        return next && next !== pid ? next : undefined
      },
      30_000,
    )
    await waitFor(
      'the source up again',
      async () => {
        const r = await fetch(`${base}/ready`)
        const ready = (await r.json()) as { sources: { source: string; up: boolean }[] }
        return ready.sources.length === 2 && ready.sources.every((s) => s.up) ? true : undefined
      },
      30_000,
      { retryErrors: true },
    )
    await sleep(5000)
    // Per sensor, every sequence number up to a point well behind the newest, exactly once.
    const { rows } = await db.query<{ sensor: string; n: string; distinct_seq: string; top: string }>(
      `WITH s AS (SELECT data->>'sensor_id' AS sensor, (data->>'seq')::int AS seq FROM sensor_data WHERE station <> 'welding'),
            m AS (SELECT sensor, max(seq) - 30 AS top FROM s GROUP BY sensor)
       SELECT s.sensor, count(*) AS n, count(DISTINCT s.seq) AS distinct_seq, m.top
       FROM s JOIN m USING (sensor) WHERE s.seq <= m.top GROUP BY s.sensor, m.top`,
    )
    assert.equal(rows.length, 20, 'every simulated sensor')
    for (const r of rows) {
      assert.equal(Number(r.n), Number(r.top), `${r.sensor}: rows up to seq ${r.top}`)
      assert.equal(Number(r.distinct_seq), Number(r.top), `${r.sensor}: none twice`)
    }
  })

  it('loads a Sparkplug edge node’s data, and shows its sensor stale when it dies', async () => {
    const e = edge!
    const now = () => Date.now()
    await born
    const metrics = [
      { name: 'weld_current', alias: 1, type: 'Double' as const, value: 10.2 },
      { name: 'electrode_force', alias: 2, type: 'Double' as const, value: 4.1 },
      { name: 'seam_ok', alias: 3, type: 'Boolean' as const, value: true },
    ]
    e.publishNodeBirth({
      timestamp: now(),
      metrics: [{ name: 'Node Control/Rebirth', type: 'Boolean', value: false }],
    })
    e.publishDeviceBirth('weld-01', {
      timestamp: now(),
      metrics: metrics.map((m) => ({ ...m, timestamp: now() })),
    })
    for (const v of [10.4, 10.6]) {
      await sleep(50)
      e.publishDeviceData('weld-01', { timestamp: now(), metrics: [{ alias: 1, type: 'Double', value: v }] })
    }
    await waitFor(
      'the welding readings',
      async () => (await count(`SELECT count(*) AS n FROM sensor_data WHERE station = 'welding'`)) >= 3,
      30_000,
    )
    const cookieOf = async () => {
      const login = await fetch(await newLoginUrl(db as unknown as pg.Pool, base), { redirect: 'manual' })
      const cookie = login.headers.get('set-cookie')!.split(';')[0]!
      rememberSecret(cookie.split('=')[1]!)
      return cookie
    }
    const cookie = await cookieOf()
    const latest = async () =>
      (await (await fetch(`${base}/stations/welding/latest`, { headers: { cookie } })).json()) as {
        data: { weld_current: number; sensor_id: string }
        stale_sensors: { sensor_id: string; reason: string }[]
      }
    assert.equal((await latest()).data.weld_current, 10.6)
    assert.deepEqual((await latest()).stale_sensors, [])

    // The edge node dies without a word: the broker publishes its NDEATH (its will).
    ;(e as unknown as { client: { stream: { destroy(): void } } }).client.stream.destroy()
    const stale = await waitFor(
      'the sensor stale',
      async () => {
        const l = await latest()
        return l.stale_sensors.length > 0 ? l.stale_sensors : undefined
      },
      20_000,
    )
    assert.deepEqual(
      stale.map((s) => s.sensor_id),
      ['weld-01'],
    )
    assert.match(stale[0]!.reason, /NDEATH/)

    browser = await launchChromium()
    const page = await (await browser.newContext({ viewport: { width: 1920, height: 1080 } })).newPage()
    await page.goto(await newLoginUrl(db as unknown as pg.Pool, base))
    const card = page.locator('article[data-station="welding"] [data-test="stale"]')
    await card.waitFor({ timeout: 30_000 })
    assert.match((await card.textContent()) ?? '', /STALE: weld-01 offline since/)
    const tile = page.locator('[data-test="source-sparkplug"], [data-test="source-mqtt"]').first()
    await tile.waitFor({ timeout: 15_000 })
  })
})
