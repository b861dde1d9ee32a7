// @alone: Chromium and a timed ingest rate (within 10 % of a known rate)
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { Browser } from 'playwright-core'
import { buildApp } from '../../src/api/index.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { applyCatalog, withClient } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { cli, count, envOf, isolatedConfig, killTree, log, produceRaw, waitFor } from '../helpers.ts'
import { topicFor } from '../plant.ts'
import {
  ensureDashboardBuilt,
  launchChromium,
  openPage,
  reading,
  screenshot,
  startApi,
  waitForText,
} from './helpers.ts'

/** A plant with some history: 400 readings over ~4 minutes, no simulated faults. */
const history = { simCount: 400, simSensorsPerStation: 2, simIntervalMs: 5000, simFaultRate: 0 }

describe('the plant dashboard in Chromium', () => {
  let browser: Browser
  before(async () => {
    ensureDashboardBuilt()
    browser = await launchChromium()
  })
  after(() => browser?.close())

  it('asks to log in without a session, and logs in from the one-time URL, which leaves the address bar', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { base, login } = await startApi(t, pool)
    // The API's 401s are expected here: the browser logs them as failed resources.
    const { page } = await openPage(t, browser, `${base}/`, /401/)
    await waitForText(page, '#banner', /Not logged in/)
    await page.goto(login)
    assert.equal(page.url(), `${base}/`, 'the token is gone from the address bar')
    await page.locator('#banner').waitFor({ state: 'hidden' })
    await waitForText(page, '#live', /Live/)
    const cookies = await page.context().cookies()
    const session = cookies.find((c) => c.name === 'evf_session')
    assert.ok(session?.httpOnly && session.sameSite === 'Strict', 'HttpOnly, SameSite=Strict')
    assert.equal(String(await page.evaluate('document.cookie')).includes('evf_session'), false)
    // The link works once: a second browser gets the login error, not a session.
    const again = await fetch(login, { redirect: 'manual' })
    assert.equal(again.status, 401)
  })

  it('shows every panel filled from the API, with no console errors', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await produceRaw(config, [
      { topic: topicFor('paint', config.topicPrefix), value: '{"station": "paint", "ti' },
    ])
    await runBounded(config, pool, log)
    const { base, login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)

    // Station cards: every station's latest reading, in or out of spec, and how old it is.
    // (Asked with the page's session cookie.)
    const latest = (await (await page.context().request.get(`${base}/stations/paint/latest`)).json()) as {
      data: { paint_thickness: number }
    }
    await waitForText(
      page,
      'article[data-station="paint"] dd[data-field="paint_thickness"]',
      latest.data.paint_thickness.toFixed(3),
    )
    for (const station of ['chassis', 'battery', 'paint', 'quality']) {
      await waitForText(page, `article[data-station="${station}"] .age`, /Last reading \d+ s ago/)
      assert.equal(await page.getAttribute(`article[data-station="${station}"]`, 'data-state'), 'ok')
    }
    await waitForText(
      page,
      'article[data-station="quality"] dd[data-field="inspection_result"]',
      /PASS|FAIL|REWORK/,
    )

    // Records per station: all 400 readings are in the last hour.
    await waitForText(page, '#counts tfoot', '400')
    // Trends, quality and SPC draw charts (canvas) with a text summary for screen readers. Both
    // charts start at the line's first measurement with spec limits.
    await page.locator('[data-testid="trend-chart"] canvas').first().waitFor()
    assert.match(
      (await page.getAttribute('[data-testid="trend-chart"]', 'aria-label')) ?? '',
      /Bolt torque \(N·m\), mean per minute: \d+ points, latest [\d.]+; spec 180–220/,
    )
    assert.equal(await page.inputValue('#spc-field'), 'chassis.bolt_torque')
    await waitForText(page, '#quality .tile', /Inspections\s*100/)
    await waitForText(page, '#quality .tile', /First-pass yield\s*\d+(\.\d)? %/)
    await page.locator('[data-testid="quality-chart"] canvas').first().waitFor()
    await page.locator('[data-testid="spc-chart"] canvas').first().waitFor()
    await waitForText(page, '#spc .tile', /Cpk\s*\d/)
    // Pipeline health: the last ETL run, and the malformed message among the dead letters.
    await waitForText(page, '#pipeline', 'INVALID_JSON')
    await waitForText(page, '#pipeline .tile', /Last ETL run\s*OK/)

    // Switching the window refetches every aggregate (and keeps it in the URL).
    await page.getByLabel('24 h').check()
    await waitForText(page, '#counts caption', 'last 24 h')
    assert.match(page.url(), /window=24h/)
    await page.getByLabel('1 h').check()
    await waitForText(page, '#counts caption', 'last 1 h')

    await screenshot(page, 'overview')
    await page.setViewportSize({ width: 1366, height: 768 })
    await screenshot(page, 'laptop')
    assert.deepEqual(errors, [])
  })

  it('shows a reading loaded after the page opened, live, and flags an out-of-control paint thickness', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    await page.selectOption('#spc-field', 'paint.paint_thickness')
    await page
      .locator('[data-testid="spc-chart"][aria-label^="Individuals chart of Paint thickness"]')
      .waitFor()
    await waitForText(page, '#spc .tile', /Out of control\s*0 of 100/)
    await waitForText(page, '#live', /Live · 0 readings/)

    // A torque no simulated reading has, and a paint film far thicker than the process makes.
    await produceRaw(config, [
      {
        topic: topicFor('chassis', config.topicPrefix),
        value: reading('chassis', { bolt_torque: 231.7, weld_current: 10, frame_alignment: 0 }),
      },
      {
        topic: topicFor('paint', config.topicPrefix),
        value: reading('paint', { booth_temp: 22, booth_humidity: 60, paint_thickness: 1.6 }),
      },
    ])
    await runBounded(config, pool, log)

    // Over the stream, without a reload: the cards, the live counter, the SPC chart.
    const torque = 'article[data-station="chassis"] dd[data-field="bolt_torque"]'
    await waitForText(page, torque, '231.7')
    assert.equal(await page.getAttribute(torque, 'data-spec'), 'high')
    await waitForText(page, torque, 'above spec')
    await waitForText(page, '#live', /Live · 2 readings received/)
    await waitForText(page, '#spc .alarms li', /1\.600 mil .* above UCL/)
    await waitForText(page, '#spc .tile', /Out of control\s*1 of 100/)
    await screenshot(page, 'spc')
    assert.deepEqual(errors, [])
  })

  it('follows the catalog: a station applied while the page is open gets a card within seconds, and loses it when retired', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    await waitForText(page, 'article[data-station="quality"] .age', /Last reading/)
    const card = 'article[data-station="welding"]'
    assert.equal(await page.locator(card).count(), 0)

    // A fifth station, applied as `evf catalog apply` would: the API hears of it (LISTEN) and
    // tells the page over the stream.
    const plant = catalogFromFile().document
    const withWelding = structuredClone(plant)
    withWelding.lines[0]!.stations.push({
      id: 'welding',
      name: 'Welding cell',
      measurements: {
        weld_temp: {
          type: 'number',
          unit: 'Cel',
          description: 'Seam temperature',
          decimals: 0,
          range: { min: 0, max: 2000 },
          spec: { lsl: 1400, target: 1500, usl: 1600 },
        },
        arc_on: { type: 'boolean', description: 'Arc struck' },
      },
    })
    await withClient(pool, (c) => applyCatalog(c, withWelding, { source: 'dashboard.test.ts' }))
    await waitForText(page, `${card} h3`, 'Welding cell', 10_000)
    await waitForText(page, `${card} .age`, 'No reading yet')
    await waitForText(page, `${card} dd[data-field="weld_temp"]`, '—')
    await waitForText(page, `${card} dd[data-field="arc_on"]`, '—')
    // The other cards keep their readings; the selectors offer the new measurement and keep theirs.
    await waitForText(page, 'article[data-station="quality"] .age', /Last reading/)
    assert.equal(await page.locator('#spc-field option[value="welding.weld_temp"]').count(), 1)
    assert.equal(await page.locator('#trend-field option[value="welding.weld_temp"]').count(), 1)
    assert.equal(await page.inputValue('#spc-field'), 'chassis.bolt_torque')
    await screenshot(page, 'catalog')

    // Retired: no live card, and its history is still offered, marked.
    await withClient(pool, (c) => applyCatalog(c, plant, { source: 'dashboard.test.ts' }))
    await page.locator(card).waitFor({ state: 'detached', timeout: 10_000 })
    assert.equal(await page.locator('#trend-field optgroup[label="Welding cell (retired)"]').count(), 1)
    assert.equal(await page.locator('article.card').count(), 4)
    assert.deepEqual(errors, [])
  })

  it('shows a banner while the API is away and clears it when the API is back', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const { app, base, login } = await startApi(t, pool)
    const { page } = await openPage(t, browser, login)
    await waitForText(page, '#live', /Live ·/)
    await waitForText(page, '#counts tfoot', '400')
    await page.locator('[data-testid="spc-chart"] canvas').first().waitFor()
    await waitForText(page, 'article[data-station="quality"] .age', /Last reading/)
    assert.equal(await page.isVisible('#banner'), false)

    await app.close()
    await waitForText(page, '#banner', 'API unreachable — reconnecting…')
    await waitForText(page, '#live', 'Stream reconnecting…')
    await screenshot(page, 'banner')

    // The same port again: EventSource reconnects by itself and the banner goes.
    await startApi(t, pool, Number(new URL(base).port))
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: 20_000 })
    await waitForText(page, '#live', /Live ·/)
  })

  it('says so in the pipeline panel and the banner when the ETL is stalled, and clears it when it commits again', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    // What the watchdog records when messages wait and nothing commits (src/etl/watchdog.ts).
    await pool.query(
      `INSERT INTO etl_lag (topic, partition, end_offset, end_offset_at, seen_next_offset, progress_at, watched)
       SELECT topic, partition, next_offset + 5000, now(), next_offset, now() - interval '2 minutes', true FROM etl_offsets
       ON CONFLICT (topic, partition) DO UPDATE SET end_offset = EXCLUDED.end_offset,
         seen_next_offset = EXCLUDED.seen_next_offset, progress_at = EXCLUDED.progress_at, watched = true`,
    )
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    await waitForText(page, '#banner', /ETL stalled: [\d,]+ messages wait and nothing was committed/)
    await waitForText(page, '#pipeline .tile.alarm', 'STALLED')
    await waitForText(page, '#pipeline [data-test="stalled"]', /ETL stalled/)
    await screenshot(page, 'stalled')

    // Caught up again: the next refresh (every 15 s) takes the banner away.
    await pool.query('UPDATE etl_lag SET end_offset = seen_next_offset, progress_at = now()')
    await page.locator('#banner').waitFor({ state: 'hidden', timeout: 30_000 })
    await waitForText(page, '#pipeline .tile', 'OK')
    assert.deepEqual(errors, [])
  })

  it('names a partition held back at a record batch that cannot be decoded, with its reason', async (t) => {
    const { config, pool } = await isolatedConfig(t, history)
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    // What the ETL records when it holds a partition back (src/etl/held.ts).
    const { rows } = await pool.query<{ topic: string; next_offset: string }>(
      'SELECT topic, next_offset::text FROM etl_offsets WHERE partition = 0 ORDER BY topic LIMIT 1',
    )
    const { topic, next_offset: at } = rows[0]!
    await pool.query(
      `INSERT INTO etl_blocked (topic, partition, first_offset, last_offset, reason, raw)
       VALUES ($1, 0, $2, $2::bigint + 4, 'Unknown frame descriptor', '\\x00')`,
      [topic, at],
    )
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    const said = new RegExp(
      `ETL stalled on ${topic.replaceAll('.', '\\.')}\\[0\\]: the record batch at offsets ${at}–${Number(at) + 4} cannot be decoded \\(Unknown frame descriptor\\)`,
    )
    await waitForText(page, '#banner', said)
    await waitForText(page, '#pipeline [data-test="stalled"]', said)
    await page.locator('#pipeline details[data-key="lag"] summary').click()
    await waitForText(page, '#pipeline details[data-key="lag"]', /held back/)
    await screenshot(page, 'held-back')
    assert.deepEqual(errors, [])
  })

  it('shows the current ingest rate of a plant producing 1,000 readings/s, and the window’s average as one', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const env = envOf(config)
    const etl = cli(['etl', 'follow'], env)
    t.after(() => killTree(etl))
    // 4 stations × 25 sensors every 100 ms: 1,000 readings/s.
    const sim = cli(['simulate'], { ...env, EVF_SIM_SENSORS_PER_STATION: '25', EVF_SIM_INTERVAL_MS: '100' })
    t.after(() => killTree(sim))
    await waitFor(
      'readings loaded',
      async () => (await count(pool, 'SELECT count(*) AS n FROM sensor_data')) > 2000,
      60_000,
    )
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    // The tile is the last 10 s of commits; the panel refreshes every 15 s and after live readings.
    const tile = page.locator('#pipeline [data-test="ingest-now"]')
    await waitForText(page, '#pipeline [data-test="ingest-now"]', /Ingest, last 10 s/)
    const rate = async () => Number(((await tile.locator('dd').textContent()) ?? '').replace(/[^\d.]/g, ''))
    const shown: number[] = []
    await waitFor(
      'the ingest tile within 10 % of 1,000 rows/s',
      async () => {
        shown.push(await rate())
        return Math.abs(shown.at(-1)! - 1000) <= 100
      },
      60_000,
    ).catch(() =>
      assert.fail(`the ingest tile showed ${shown.slice(-5).join(', ')} rows/s, not 1,000 ± 10 %`),
    )
    // The window's average is labelled as one, and large numbers have thousands separators.
    await waitForText(page, '#pipeline .tile', /Average, last 1 h\s*[\d,.]+ rows\/s/)
    await waitForText(page, '#counts tfoot', /Total\s*\d{1,3}(,\d{3})+/)
    await screenshot(page, 'ingest')
    assert.deepEqual(errors, [])
  })

  it('shows sensible empty states on a new database', async (t) => {
    const { pool } = await isolatedConfig(t)
    const { login } = await startApi(t, pool)
    const { page, errors } = await openPage(t, browser, login)
    await waitForText(page, 'article[data-station="paint"] .age', 'No reading yet')
    await waitForText(page, '#counts', 'No readings in the last 1 h.')
    await waitForText(page, '#trends', 'No bolt torque readings in this window.')
    await waitForText(page, '#quality', 'No inspections in the last 1 h.')
    await waitForText(page, '#spc', 'Not enough readings yet')
    await waitForText(page, '#pipeline', 'No dead letters in the last 1 h.')
    await waitForText(page, '#pipeline .tile', /Last ETL commit\s*never/)
    await waitForText(page, '#pipeline [data-test="notifications"]', 'Alarm notifications: none sent yet.')
    await waitForText(page, '#alarm-banner', 'No active alarms')
    await waitForText(page, '#alarms', 'No alarms: every rule’s condition is normal')
    assert.equal(await page.isVisible('#banner'), false)
    await screenshot(page, 'empty')
    assert.deepEqual(errors, [])
  })
})

describe('the dashboard over HTTP', () => {
  it('serves index.html uncached and the hashed assets for a year', async (t) => {
    ensureDashboardBuilt()
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    const index = await app.inject({ url: '/' })
    assert.equal(index.statusCode, 200)
    assert.match(index.headers['content-type'] as string, /text\/html/)
    assert.equal(index.headers['cache-control'], 'no-cache')
    assert.doesNotMatch(index.body, /<script>|<script [^>]*>[^<]/, 'no inline script: the CSP forbids it')
    const assets = [...index.body.matchAll(/(?:src|href)="\.\/(assets\/[^"]+)"/g)].map((m) => m[1]!)
    assert.ok(assets.some((a) => a.endsWith('.js')) && assets.some((a) => a.endsWith('.css')))
    for (const asset of assets) {
      const res = await app.inject({ url: `/${asset}` })
      assert.equal(res.statusCode, 200, asset)
      assert.equal(res.headers['cache-control'], 'public, max-age=31536000, immutable', asset)
    }
    const missing = await app.inject({ url: '/assets/index-nope.js' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().code, 'NOT_FOUND')
  })

  it('answers 503 with what to run when the dashboard is not built', async (t) => {
    const { pool } = await isolatedConfig(t)
    const dir = mkdtempSync(join(tmpdir(), 'evf-no-dashboard-'))
    const app = await buildApp({ pool, auth: 'off', logger: false, dashboardDir: dir })
    t.after(() => app.close())
    const res = await app.inject({ url: '/' })
    assert.equal(res.statusCode, 503)
    assert.match(res.body, /npm run build:web/)
    assert.equal((await app.inject({ url: '/health' })).statusCode, 200, 'the API itself still works')
  })
})
