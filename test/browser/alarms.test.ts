// @alone: Chromium, and the alarm evaluator leading in the API's process
/**
 * Alarms on the dashboard (docs/dashboard.md): a bolt torque above its spec limit, loaded through
 * Kafka by the real ETL and raised by the evaluator running in the API's process, appears in the
 * banner, the alarm list and on the SPC chart; the operator acknowledges and shelves it from the
 * page with the session's scope `operate`, and the history keeps who and why; a refusal
 * (problem+json) is shown in the form; the notifications' delivery is in the pipeline panel.
 */
import assert from 'node:assert/strict'
import { after, before, describe, it } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { catalogRules } from '../../src/alarms/rules.ts'
import { issueToken } from '../../src/api/index.ts'
import type { AlarmTransition } from '../../src/api/schemas-alarms.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { seedRules } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { receiver, smtp } from '../alarm-receivers.ts'
import { count, isolatedConfig, log, produceRaw, waitFor } from '../helpers.ts'
import { topicFor } from '../plant.ts'
import { rememberSecret } from '../secrets.ts'
import {
  ensureDashboardBuilt,
  launchChromium,
  openPage,
  reading,
  screenshot,
  startApi,
  waitForText,
} from './helpers.ts'

const RULE = 'spec:chassis:bolt_torque'
const ROW = `#alarms tr[data-rule="${RULE}"]`
const torque = (bolt_torque: number) =>
  reading('chassis', { bolt_torque, weld_current: 10, frame_alignment: 0 })

/** The banner's count of one severity, and of those unacknowledged. */
async function banner(page: Page) {
  const n = async (selector: string) =>
    Number(await page.getAttribute(`#alarm-banner ${selector}`, 'data-count'))
  return {
    critical: await n('[data-severity="critical"]'),
    high: await n('[data-severity="high"]'),
    medium: await n('[data-severity="medium"]'),
    low: await n('[data-severity="low"]'),
    unacknowledged: await n('.ab-unack'),
  }
}

/** Opens the row's inline form for `action`, writes the comment (and the length) and submits it. */
async function act(page: Page, action: string, comment: string, minutes?: string) {
  await page.click(`${ROW} button[data-action="${action}"]`)
  const form = `#alarms form[data-action="${action}"]`
  await page
    .locator(form)
    .getByLabel(action === 'shelve' ? 'Comment' : 'Comment (optional)', { exact: true })
    .fill(comment)
  if (minutes) await page.selectOption(`${form} select[name="minutes"]`, minutes)
  await page.click(`${form} button[type="submit"]`)
}

describe('alarms on the dashboard in Chromium', () => {
  let browser: Browser
  before(async () => {
    ensureDashboardBuilt()
    browser = await launchChromium()
  })
  after(() => browser?.close())

  it('shows a spec alarm loaded by the ETL in the banner, the list and the SPC chart, and acknowledges and shelves it from the page', async (t) => {
    // A webhook that refuses once, then takes it; an SMTP server that is not there.
    const hook = await receiver([500])
    t.after(() => hook.close())
    const nobody = await smtp()
    await nobody.close()
    const { config, pool } = await isolatedConfig(t, {
      simCount: 400,
      simSensorsPerStation: 2,
      simIntervalMs: 5000,
      simFaultRate: 0,
      alarmGroupWaitMs: 500,
      alarmWebhookUrl: hook.url,
      alarmWebhookSecret: 'a-webhook-secret-for-the-dashboard',
      smtpUrl: `smtp://127.0.0.1:${nobody.port}`,
      alarmEmailTo: 'shift@plant.example',
    })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    // The catalog's spec rules only: this test's own sensor falls silent after its readings, and
    // a stale alarm (medium) is not what it is about.
    await seedRules(
      pool,
      catalogRules(catalogFromFile()).map((r) => ({ ...r, enabled: r.kind === 'spec' })),
    )
    const { base, login, close } = await startApi(t, pool, 0, { alarms: config })
    // The page's own 409 below, which the browser logs as a failed resource.
    const { page, errors } = await openPage(t, browser, login, /status of 409.*\/unshelve/)
    await waitForText(page, '#alarm-banner', 'No active alarms')
    await waitForText(page, '#alarms', 'No alarms')

    // The evaluator takes the lead and evaluates from where the ETL then stands: readings in spec
    // until it has evaluated one, so that the next reading is its.
    const chassis = topicFor('chassis', config.topicPrefix)
    await waitFor(
      'the evaluator to evaluate a loaded reading',
      async () => {
        await produceRaw(config, [{ topic: chassis, key: 'k', value: torque(200) }])
        await runBounded(config, pool, log)
        return (await count(pool, 'SELECT count(*) AS n FROM alarm_offsets')) > 0
      },
      60_000,
      { everyMs: 500 },
    )

    // A torque above the USL (220 N·m), the real way: Kafka, the ETL, the evaluator.
    await produceRaw(config, [{ topic: chassis, key: 'k', value: torque(231.7) }])
    await runBounded(config, pool, log)
    await waitForText(page, '#alarm-banner', '1 active alarm:')
    assert.deepEqual(await banner(page), { critical: 0, high: 1, medium: 0, low: 0, unacknowledged: 1 })
    assert.equal(await page.getAttribute('#alarm-banner', 'data-worst'), 'high')
    assert.equal(await page.getAttribute('#alarm-banner', 'role'), 'status')
    await waitForText(page, `${ROW} td.state`, 'Active, unacknowledged')
    assert.equal(await page.getAttribute(ROW, 'data-state'), 'UNACK')
    assert.equal(await page.getAttribute(ROW, 'class'), 'unack')
    assert.deepEqual(
      await page
        .locator(`${ROW} td`)
        .allInnerTexts()
        .then((c) => c.slice(0, 6)),
      ['High', 'Chassis assembly', 'Bolt torque', RULE, 'Active, unacknowledged', '231.7 N·m'],
    )

    // The SPC chart (bolt torque, by default) marks the reading that tripped the rule.
    const flag = page.locator(`[data-testid="spc-chart"] .chart-marker-flag[title^="${RULE} raised at"]`)
    await flag.waitFor({ timeout: 15_000 })
    assert.match((await flag.getAttribute('title')) ?? '', /231\.7 above USL 220/)
    await waitForText(
      page,
      '#spc .raises li',
      /#100 spec:chassis:bolt_torque raised at .*231\.7 above USL 220/,
    )

    // Deliveries: the webhook took the message after a 500; the e-mail waits, saying why.
    await waitForText(page, '#pipeline [data-receiver="webhook"]', /^webhook: 1 sent$/, 30_000)
    await waitForText(
      page,
      '#pipeline [data-receiver="email"]',
      /^e-mail: 0 sent, 1 pending for .*\(last error: .*ECONNREFUSED/,
      30_000,
    )
    await screenshot(page, 'alarms')

    // Acknowledged from the page: the banner's unacknowledged count drops, the alarm stays active.
    await act(page, 'acknowledge', 'torque wrench recalibrated')
    await waitForText(page, `${ROW} td.state`, 'Active, acknowledged')
    await waitForText(
      page,
      '#alarms .alarm-status',
      /Acknowledge: spec:chassis:bolt_torque is now active, acknowledged/,
    )
    await waitForText(page, '#alarm-banner .ab-unack', 'all acknowledged')
    assert.deepEqual(await banner(page), { critical: 0, high: 1, medium: 0, low: 0, unacknowledged: 0 })
    assert.equal(await page.locator(`${ROW} button[data-action="acknowledge"]`).count(), 0)

    // Shelved for 4 h with why: no longer annunciated, still listed.
    await act(page, 'shelve', 'torque tool swapped, line stopped', '240')
    // A time of day, with the date when the 4 h end tomorrow (a run after 20:00).
    await waitForText(page, `${ROW} td.state`, /^Shelved until (\d{1,2} \w{3} )?\d\d:\d\d:\d\d$/)
    await waitForText(page, '#alarm-banner', 'No active alarms')

    // Who and why, in the history.
    const history = (await (
      await page.context().request.get(`${base}/alarms/history?rule=${RULE}`)
    ).json()) as AlarmTransition[]
    assert.deepEqual(
      history.map((e) => [e.from, e.to, e.comment]),
      [
        ['ACKED', 'SHELVED', 'torque tool swapped, line stopped'],
        ['UNACK', 'ACKED', 'torque wrench recalibrated'],
        ['NORMAL', 'UNACK', null],
      ],
    )
    for (const e of history.slice(0, 2)) assert.match(e.by ?? '', /^session from dashboard login \(\w{12}\)$/)
    assert.equal(history[2]?.by, null, 'raised by the evaluator')

    // Another operator unshelves it while this page's form is open: the row follows the stream,
    // the form stays, and the API's refusal is shown in it.
    await page.click(`${ROW} button[data-action="unshelve"]`)
    const { token } = await issueToken(pool, 'api', 'shift-lead', ['read', 'operate'])
    rememberSecret(token)
    const other = await fetch(`${base}/alarms/${RULE}/unshelve`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ comment: 'back on line' }),
    })
    assert.equal(other.status, 200)
    await waitForText(page, `${ROW} td.state`, 'Active, unacknowledged', 10_000)
    assert.deepEqual(await banner(page), { critical: 0, high: 1, medium: 0, low: 0, unacknowledged: 1 })
    await page.click('#alarms form[data-action="unshelve"] button[type="submit"]')
    await waitForText(
      page,
      '#alarms form[data-action="unshelve"] .form-error',
      'Unshelve refused (409): the alarm is UNACK (active, unacknowledged): unshelve does nothing in that state',
    )
    await page.click('#alarms form[data-action="unshelve"] button:text("Cancel")')
    assert.equal(await page.locator('#alarms form').count(), 0)

    assert.deepEqual(errors, [])
    await close()
  })
})
