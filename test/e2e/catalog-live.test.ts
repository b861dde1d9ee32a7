// @alone: the whole stack, a catalog applied while it runs, and Chromium
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import type { Browser } from 'playwright-core'
import { stringify } from 'yaml'
import { newLoginUrl } from '../../src/api/tokens.ts'
import type { CatalogDocument } from '../../src/catalog/index.ts'
import { readKafkaSecrets } from '../../src/kafka/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { ensureDashboardBuilt, launchChromium, openPage } from '../browser/helpers.ts'
import { runCli, waitFor } from '../helpers.ts'
import { plant, withWelding } from '../plant.ts'
import { rememberSecret } from '../secrets.ts'
import { type GroupChild, killGroup, stackUp } from './group.ts'

const dataDir = join(repoRoot, '.test-stack', 'e2e-catalog')

/** `evf catalog apply` of `doc` (written as YAML, as a plant would edit it), next to the running stack. */
async function apply(doc: CatalogDocument, name: string): Promise<string> {
  const file = join(dataDir, name)
  writeFileSync(file, stringify(doc))
  return runCli(['catalog', 'apply', file], { EVF_DATA_DIR: dataDir })
}

/** The pids in the stack's process group: the stack and every component it started. */
const groupPids = (pgid: number): Set<number> =>
  new Set(
    execFileSync('ps', ['-o', 'pid=', '-g', String(pgid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => Number(l.trim()))
      .filter((n) => n > 0),
  )

interface Row {
  id: number
  station: string
  data: Record<string, unknown> & { timestamp: number; out_of_spec?: string[] }
}

describe('a catalog applied to a running plant', () => {
  let stack: GroupChild
  let browser: Browser
  let db: pg.Client
  let base: string
  let cookie: string
  const get = async <T>(path: string): Promise<T> => {
    const res = await fetch(`${base}${path}`, { headers: { cookie } })
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as T
  }
  const readings = (station: string) => get<Row[]>(`/sensor-data?station=${station}&limit=1000`)

  before(async () => {
    await rm(dataDir, { recursive: true, force: true })
    ensureDashboardBuilt()
    const [apiPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort()]
    stack = stackUp(
      [
        '--data-dir',
        dataDir,
        '--kafka-port',
        String(kafkaPort),
        '--kafka-controller-port',
        String(controllerPort),
        '--api-port',
        String(apiPort),
      ],
      { EVF_SIM_INTERVAL_MS: '250', EVF_SIM_SENSORS_PER_STATION: '1' },
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
    for (const password of Object.values(readKafkaSecrets(dataDir) ?? {})) rememberSecret(password)
    base = `http://127.0.0.1:${apiPort}`
    const { databaseUrl } = JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8')) as {
      databaseUrl: string
    }
    db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    const login = await fetch(await newLoginUrl(db as unknown as pg.Pool, base), { redirect: 'manual' })
    cookie = login.headers.get('set-cookie')!.split(';')[0]!
    rememberSecret(cookie.split('=')[1]!)
    browser = await launchChromium()
  })
  after(async () => {
    await browser?.close()
    await db?.end()
    killGroup(stack?.child.pid, 'SIGINT')
    const timer = setTimeout(() => killGroup(stack?.child.pid, 'SIGKILL'), 60_000)
    await stack?.exited
    clearTimeout(timer)
  })

  it('adds a welding cell with one file and one command: produced, loaded, served, shown, in BI, nothing restarted', async (t) => {
    await waitFor(
      'readings of the four stations',
      async () => ((await readings('paint')).length > 0 ? true : undefined),
      60_000,
    )
    const pids = groupPids(stack.child.pid!)
    const { page, errors } = await openPage(t, browser, await newLoginUrl(db as unknown as pg.Pool, base))
    await page.locator('article[data-station="paint"]').waitFor({ timeout: 30_000 })

    const out = await apply(withWelding(), 'with-welding.yaml')
    assert.match(out, /\+ station welding/)
    assert.match(out, /applied as catalog version 2/)

    // Simulated, loaded and served, in the reference shape.
    const rows = await waitFor(
      'readings of the welding cell',
      async () => {
        const r = await readings('welding')
        return r.length >= 5 ? r : undefined
      },
      60_000,
      { everyMs: 500, retryErrors: true, detail: () => stack.output().slice(-3000) },
    )
    assert.ok(
      rows.every((r) => typeof r.data.weld_current === 'number' && typeof r.data.seam_ok === 'boolean'),
    )
    assert.deepEqual(Object.keys(rows[0]!).sort(), ['created_at', 'data', 'id', 'station'])
    const assets = await get<{ version: number; areas: { lines: { stations: { id: string }[] }[] }[] }>(
      '/assets',
    )
    assert.equal(assets.version, 2)
    assert.ok(assets.areas[0]!.lines[0]!.stations.some((s) => s.id === 'welding'))
    const series = await waitFor(
      'its statistics',
      async () => {
        const ts = await get<{ points: { count: number }[] }>(
          '/stats/timeseries?station=welding&field=weld_current',
        )
        return ts.points.length > 0 ? ts : undefined
      },
      30_000,
      { retryErrors: true },
    )
    assert.ok(series.points[0]!.count > 0)
    const counts = await get<{ stations: { station: string; records: number }[] }>('/stats/counts')
    assert.ok(counts.stations.find((s) => s.station === 'welding')!.records > 0)
    // The OpenAPI document's enum follows the catalog.
    const doc = JSON.stringify(await get('/docs/json'))
    assert.match(doc, /"enum":\["chassis","battery","paint","quality","welding"\]/)

    // Shown in Chromium without a reload.
    await page.locator('article[data-station="welding"]').waitFor({ timeout: 30_000 })
    assert.deepEqual(errors, [])

    // Its typed BI view, readable by the BI role.
    const bi = await db.query(
      'SELECT weld_current_ka, electrode_force_kn, seam_ok, weld_current_in_spec FROM bi.welding_readings LIMIT 5',
    )
    assert.ok(bi.rows.length > 0)
    assert.equal(typeof bi.rows[0].seam_ok, 'boolean')

    // No process was restarted: every pid of the stack's group is still there.
    const now = groupPids(stack.child.pid!)
    for (const pid of pids) assert.ok(now.has(pid), `process ${pid} is still running`)
    assert.doesNotMatch(stack.output(), /exited unexpectedly|exited; starting it again/)
  })

  it('a tightened spec limit leaves past verdicts as they were, and judges new readings by it', async () => {
    const before = await readings('welding')
    // Before: a current between 10 and 12 kA was within spec.
    const inSpecThen = before.filter(
      (r) => (r.data.weld_current as number) > 10 && (r.data.weld_current as number) <= 12,
    )
    assert.ok(inSpecThen.length > 0, 'some readings between 10 and 12 kA')
    assert.ok(inSpecThen.every((r) => !r.data.out_of_spec?.includes('weld_current')))
    const out = await apply(withWelding({ usl: 10, target: 9.5 }), 'tightened.yaml')
    assert.match(out, /welding\.weld_current limits from now: lsl 8, target 9.5, usl 10/)
    const changedAt = Date.now() / 1000
    const flagged = await waitFor(
      'a reading above the new limit, flagged',
      async () => {
        const r = (await readings('welding')).filter(
          (x) => x.data.timestamp > changedAt + 2 && (x.data.weld_current as number) > 10,
        )
        return r.length > 0 ? r : undefined
      },
      30_000,
      { everyMs: 500 },
    )
    assert.ok(flagged.every((r) => r.data.out_of_spec?.includes('weld_current')))
    // The old readings are served as they were judged.
    const again = new Map((await readings('welding')).map((r) => [r.id, r]))
    for (const r of inSpecThen)
      assert.equal(again.get(r.id)?.data.out_of_spec?.includes('weld_current') ?? false, false)
    // The chart gets the limits of each time.
    const ts = await get<{ limits: { usl: number | null }[] }>(
      '/stats/timeseries?station=welding&field=weld_current',
    )
    assert.deepEqual(
      ts.limits.map((l) => l.usl),
      [12, 10],
    )
    const bi = await db.query<{ n: string }>(
      `SELECT count(*) AS n FROM bi.welding_readings WHERE weld_current_ka > 10 AND weld_current_ka <= 12 AND weld_current_in_spec AND reading_time < to_timestamp($1)`,
      [changedAt],
    )
    assert.ok(Number(bi.rows[0]!.n) > 0, 'BI keeps the verdicts of their time')
  })

  it('a retired station keeps its history: still served, no longer produced', async () => {
    const out = await apply(structuredClone(plant.document), 'retired.yaml')
    assert.match(out, /- station welding \(retired/)
    const stations = await get<{ name: string; status: string }[]>('/stations')
    assert.equal(stations.find((s) => s.name === 'welding')?.status, 'retired')
    await new Promise((r) => setTimeout(r, 3000))
    const history = await readings('welding')
    assert.ok(history.length > 0)
    await new Promise((r) => setTimeout(r, 3000))
    assert.equal(
      (await readings('welding')).length,
      history.length,
      'no new welding readings after retirement',
    )
    const ts = await get<{ points: unknown[] }>('/stats/timeseries?station=welding&field=weld_current')
    assert.ok(ts.points.length > 0)
  })
})
