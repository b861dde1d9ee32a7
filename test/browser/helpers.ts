import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import type { FastifyInstance } from 'fastify'
import { type Browser, chromium, type Page } from 'playwright-core'
import { startAlarms } from '../../src/alarms/index.ts'
import { buildApp, newLoginUrl } from '../../src/api/index.ts'
import type { Config } from '../../src/config/index.ts'
import type { Pool } from '../../src/db/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { log as testLog } from '../helpers.ts'

/**
 * Screenshots go to .test-stack/screenshots (every run), and into docs/img — the ones
 * docs/dashboard.md shows — only when asked: `EVF_UPDATE_SCREENSHOTS=1 npm test`. So a test run
 * leaves the working tree clean.
 */
export const screenshotDir = process.env.EVF_UPDATE_SCREENSHOTS
  ? join(repoRoot, 'docs/img')
  : join(repoRoot, '.test-stack/screenshots')

function newestUnder(dir: string): number {
  return Math.max(
    ...readdirSync(dir, { withFileTypes: true }).map((e) =>
      e.isDirectory() ? newestUnder(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs,
    ),
  )
}

/**
 * Builds the dashboard when dist/web is older than web/ (`npm test` runs setup, which does the
 * same; running test/run.ts directly does not).
 */
export function ensureDashboardBuilt(): void {
  const index = join(repoRoot, 'dist/web/index.html')
  if (existsSync(index) && statSync(index).mtimeMs >= newestUnder(join(repoRoot, 'web'))) return
  const r = spawnSync('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'], {
    cwd: repoRoot,
    stdio: 'inherit',
  })
  if (r.status !== 0) throw new Error('the dashboard does not build: see `npm run build:web`')
}

/** Debian's Chromium (installed by scripts/debian.mjs), headless, without background traffic. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-default-apps',
      '--disable-sync',
      '--no-first-run',
      '--disable-dev-shm-usage',
    ],
  })
}

/**
 * The API with the dashboard and authentication on, on a free port; closed after the test.
 * `login` is the one-time URL `npm start` would print: open it to be logged in. With `alarms`,
 * the alarm evaluator and notifier run in the API's process with that configuration, as `evf api`
 * runs them (EVF_ALARM_EVALUATOR=api); then call `close` before the test ends, so that they stop
 * before its database is dropped.
 */
export async function startApi(
  t: TestContext,
  pool: Pool,
  port = 0,
  options: { alarms?: Config } = {},
): Promise<{ app: FastifyInstance; base: string; login: string; close: () => Promise<void> }> {
  const config = options.alarms
  const app = await buildApp({
    pool,
    auth: 'on',
    logger: false,
    config: config ? { apiRateLimit: 0 } : undefined,
    alarms: config && ((catalog) => startAlarms(config, { pool, log: testLog, catalog })),
  })
  let closing: Promise<void> | undefined
  const close = () => {
    closing ??= app.close()
    return closing
  }
  t.after(close)
  await app.listen({ host: '127.0.0.1', port })
  const address = app.server.address()
  if (!address || typeof address !== 'object') throw new Error('the API has no address')
  const base = `http://127.0.0.1:${address.port}`
  return { app, base, login: await newLoginUrl(pool, base), close }
}

/**
 * A page at wall-screen size with its console errors collected. `ignore` matches errors that
 * are the point of a test (the API going away, a station with no reading yet answering 404).
 */
export async function openPage(
  t: TestContext,
  browser: Browser,
  url: string,
  ignore?: RegExp,
): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } })
  t.after(() => context.close())
  const page = await context.newPage()
  const errors: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error' && !ignore?.test(`${m.text()} ${m.location().url}`)) errors.push(m.text())
  })
  page.on('pageerror', (e) => errors.push(`uncaught: ${e.message}`))
  await page.goto(url)
  return { page, errors }
}

/** Waits until an element matching `selector` contains `text`. */
export async function waitForText(page: Page, selector: string, text: string | RegExp, timeout = 15_000) {
  await page.locator(selector).filter({ hasText: text }).first().waitFor({ timeout })
}

export async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(screenshotDir, { recursive: true })
  await page.screenshot({ path: join(screenshotDir, `dashboard-${name}.png`), fullPage: true })
}

/** A valid reading as the simulator would send it, with the given measurements. */
export function reading(station: string, fields: Record<string, number | string>, ageSec = 0): string {
  return JSON.stringify({
    station,
    sensor_id: `${station}-test`,
    line: 'L1',
    seq: 1,
    timestamp: Date.now() / 1000 - ageSec,
    ...fields,
  })
}
