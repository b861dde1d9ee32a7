/**
 * `npm test [file or folder…]`.
 *
 * With no argument (CI's `.ci/run`): Biome and `tsc` (root and web/) run while the real services
 * start (an embedded Kafka broker and PostgreSQL under .test-stack/, on ports apart from a dev
 * stack's); then every test file, side by side (EVF_TEST_CONCURRENCY at once, the cores by
 * default), then the files marked `// @alone: <why>` one at a time.
 *
 * With files or folders (`npm test -- test/unit`): only those, no lint or type-check (`npm run
 * check` does both), and the services only when a chosen file is outside test/unit/ — so unit
 * files run in seconds.
 *
 * Each file runs in a process of its own with a per-test timeout and a leak check (test/leaks.ts,
 * test/run-files.ts); the ten slowest files are listed at the end; every secret the run generated
 * is looked for in its output and logs.
 */
import { spawn } from 'node:child_process'
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { join, relative, resolve } from 'node:path'
import { loadConfig } from '../src/config/index.ts'
import { kafkaSecrets } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { maskPasswords } from '../src/shared/redact.ts'
import { type Services, startServices } from '../src/stack/index.ts'
import { aloneReason, type FileResult, rememberTimes, runFile, runParallel } from './run-files.ts'
import { rememberSecret, scanForSecrets, secretsOf } from './secrets.ts'

const step = (msg: string) => process.stderr.write(`[test] ${msg}\n`)
const started = Date.now()

/** A command's output, shown only if it fails. */
function check(cmd: string, args: string[]): Promise<boolean> {
  return new Promise((done) => {
    const child = spawn(cmd, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => out.push(d))
    child.on('close', (code) => {
      step(`${cmd} ${args.join(' ')}: ${code === 0 ? 'ok' : 'FAILED'}`)
      if (code !== 0) process.stderr.write(Buffer.concat(out))
      done(code === 0)
    })
  })
}

const testFilesIn = (path: string): string[] =>
  statSync(path).isDirectory()
    ? readdirSync(path, { withFileTypes: true }).flatMap((e) => testFilesIn(join(path, e.name)))
    : path.endsWith('.test.ts')
      ? [path]
      : []

const args = process.argv.slice(2)
const full = args.length === 0
for (const a of args) if (!existsSync(a)) throw new Error(`${a}: no such test file or folder`)
const files = [...new Set((full ? [join(repoRoot, 'test')] : args).flatMap((a) => testFilesIn(resolve(a))))]
  .map((f) => relative(repoRoot, f))
  .sort()
if (files.length === 0) throw new Error(`no *.test.ts under ${args.join(' ')}`)
const needsServices = files.some((f) => !f.startsWith('test/unit/'))

// The Debian packages the chosen tests use: Chromium for the browser tests, OpenSSL for the
// Kafka TLS test's independent look at the broker's certificate, Mosquitto for the device tests.
const packages = [
  ...(files.some((f) => f.startsWith('test/browser/')) ? ['chromium'] : []),
  ...(files.some((f) => f.endsWith('kafka-tls.test.ts')) ? ['openssl'] : []),
  // Eclipse Mosquitto, the broker of the device tests, and its clients, an MQTT publisher we did not write.
  ...(files.some((f) => /ingest|devices/.test(f)) ? ['mosquitto', 'mosquitto-clients:mosquitto_pub'] : []),
]
if (packages.length > 0 && !(await check(process.execPath, ['scripts/debian.mjs', ...packages])))
  process.exit(1)

const dataDir = join(repoRoot, '.test-stack')
rmSync(dataDir, { recursive: true, force: true })

// Lint and type-check on a full run only, at the same time as the services start.
const checks = full
  ? Promise.all([
      check('npx', ['biome', 'check', '.']),
      check('npx', ['tsc', '--noEmit', '-p', '.']),
      check('npx', ['tsc', '--noEmit', '-p', 'web']),
    ]).then((oks) => oks.every(Boolean))
  : Promise.resolve(true)
if (!full) step('named files: lint and type-check skipped (`npm run check` runs both)')

let services: Services | undefined
const env: Record<string, string> = {
  ...(process.env as Record<string, string>),
  EVF_LOG_LEVEL: process.env.EVF_LOG_LEVEL ?? 'warn',
}
if (needsServices) {
  // Two checkouts on one machine can test at once: EVF_TEST_KAFKA_PORT moves the broker (and its
  // controller, one port up).
  const kafkaPort = Number(process.env.EVF_TEST_KAFKA_PORT ?? 19092)
  const config = loadConfig({ dataDir, kafkaPort, kafkaControllerPort: kafkaPort + 1, kafkaHeapMb: 512 }, {})
  step('starting Kafka and PostgreSQL for the tests…')
  const t0 = Date.now()
  services = await startServices(config, createLogger('test-services', 'warn'))
  step(
    `services up in ${Date.now() - t0} ms: Kafka ${services.kafkaBrokers}, PostgreSQL ${maskPasswords(services.databaseUrl)}`,
  )
  rememberSecret(decodeURIComponent(new URL(services.databaseUrl).password), dataDir)
  // The broker's users, the controller's login included: none may appear in any log.
  for (const password of Object.values(kafkaSecrets(dataDir))) rememberSecret(password, dataDir)
  Object.assign(env, {
    EVF_TEST_KAFKA_BROKERS: services.kafkaBrokers,
    // Tests log in as admin (their topics are their own); the components' users are for
    // test/integration/kafka-security.test.ts, which checks their ACLs.
    EVF_TEST_KAFKA_USERNAME: services.kafka.admin.kafkaUsername,
    EVF_TEST_KAFKA_PASSWORD: services.kafka.admin.kafkaPassword,
    EVF_TEST_KAFKA_ETL_PASSWORD: services.kafka.etl.kafkaPassword,
    EVF_TEST_KAFKA_SIMULATOR_PASSWORD: services.kafka.simulator.kafkaPassword,
    EVF_TEST_KAFKA_INGEST_PASSWORD: services.kafka.ingest.kafkaPassword,
    EVF_TEST_DATABASE_URL: services.databaseUrl,
    // Where the broker keeps its partitions' logs (a test corrupts a stored batch there).
    EVF_TEST_KAFKA_DATA: join(dataDir, 'kafka', 'data'),
  })
  // Interrupted (Ctrl-C, a CI timeout): stop the services rather than leave them running.
  for (const sig of ['SIGINT', 'SIGTERM'] as const)
    process.once(sig, () => {
      step(`${sig}: stopping the test services…`)
      void services?.stop().finally(() => process.exit(130))
    })
}

let code = 1
const output: Buffer[] = []
const results: FileResult[] = []
try {
  if (!(await checks))
    throw new Error('lint or type-check failed: fix the findings above (`npm run format` fixes formatting)')
  const opts = {
    env,
    // Per test, to end a hang rather than to hold a budget: the slowest tests (a 3-node cluster
    // under load, `airflow dags test` three times) take minutes on 2 cores. A test that needs
    // longer says so (`it(name, { timeout }, …)`).
    testTimeoutMs: Number(process.env.EVF_TEST_TIMEOUT_MS ?? 600_000),
    fileTimeoutMs: 30 * 60_000,
    concurrency: Number(process.env.EVF_TEST_CONCURRENCY ?? availableParallelism()),
    onOutput: (d: Buffer) => void output.push(d),
  }
  const alone = files.filter((f) => aloneReason(f))
  const together = files.filter((f) => !alone.includes(f))
  step(`${together.length} files, ${opts.concurrency} at a time; then ${alone.length} alone`)
  results.push(...(await runParallel(together, opts)))
  for (const f of alone) {
    step(`▶ ${f} (alone: ${aloneReason(f)})`)
    results.push(await runFile(f, opts, true))
  }
  rememberTimes(results)
  code = results.every((r) => r.ok) ? 0 : 1
} catch (error) {
  step(String(error instanceof Error ? error.message : error))
} finally {
  if (services) {
    step('stopping the test services…')
    await services.stop()
  }
}

// Secrets never reach a log: every secret the services and the tests generated (tokens, passwords)
// is looked for in the whole run's output and in every log file the run wrote.
const leaks = scanForSecrets(dataDir, Buffer.concat(output).toString('utf8'))
for (const leak of leaks) step(`SECRET LEAKED: ${leak}`)
if (leaks.length > 0) code = code || 1
else step(`secret scan: ${secretsOf(dataDir).length} secrets, none in the output or the logs`)

const slowest = [...results].sort((a, b) => b.ms - a.ms).slice(0, 10)
if (slowest.length > 0) {
  step('slowest files:')
  for (const r of slowest) step(`  ${(r.ms / 1000).toFixed(1).padStart(7)} s  ${r.file}`)
}
const failed = results.filter((r) => !r.ok)
for (const r of failed) step(`FAILED: ${r.file}${r.problems.length ? ` (${r.problems.join('; ')})` : ''}`)
step(
  `${results.length - failed.length} of ${results.length} files passed in ${((Date.now() - started) / 1000).toFixed(1)} s`,
)
process.exit(code)
