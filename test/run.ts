/**
 * `npm test`: lint and type-check, start the real services the integration tests need (an
 * embedded Kafka broker and PostgreSQL under .test-stack/, on ports apart from a dev stack's),
 * run every test file with node's test runner, stop the services, exit with the runner's code.
 */
import { spawn, spawnSync } from 'node:child_process'
import { readdirSync, rmSync } from 'node:fs'
import { join, relative } from 'node:path'
import { loadConfig } from '../src/config/index.ts'
import { kafkaSecrets } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { maskPasswords } from '../src/shared/redact.ts'
import { startServices } from '../src/stack/index.ts'
import { rememberSecret, scanForSecrets, secretsOf } from './secrets.ts'

const step = (msg: string) => process.stderr.write(`[test] ${msg}\n`)

function check(cmd: string, args: string[]): void {
  step(`${cmd} ${args.join(' ')}`)
  const r = spawnSync(cmd, args, { cwd: repoRoot, stdio: 'inherit' })
  if (r.status !== 0) {
    step(`${cmd} failed: fix the findings above (\`npm run format\` fixes formatting)`)
    process.exit(r.status ?? 1)
  }
}

check('npx', ['biome', 'check', '.'])
check('npx', ['tsc', '--noEmit', '-p', '.'])
check('npx', ['tsc', '--noEmit', '-p', 'web'])

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.test.ts') ? [join(dir, e.name)] : [],
  )
const only = process.argv.slice(2)
const testFiles = (only.length ? only : files(join(repoRoot, 'test')).sort()).map((f) =>
  relative(repoRoot, f),
)
// The Debian packages the chosen tests use: Chromium for the browser tests, OpenSSL for the
// Kafka TLS test's independent look at the broker's certificate.
const packages = [
  ...(testFiles.some((f) => f.startsWith('test/browser/')) ? ['chromium'] : []),
  ...(testFiles.some((f) => f.endsWith('kafka-tls.test.ts')) ? ['openssl'] : []),
]
if (packages.length > 0) check(process.execPath, ['scripts/debian.mjs', ...packages])

const dataDir = join(repoRoot, '.test-stack')
rmSync(dataDir, { recursive: true, force: true })
// Two checkouts on one machine can test at once: EVF_TEST_KAFKA_PORT moves the broker (and its
// controller, one port up).
const kafkaPort = Number(process.env.EVF_TEST_KAFKA_PORT ?? 19092)
const config = loadConfig({ dataDir, kafkaPort, kafkaControllerPort: kafkaPort + 1, kafkaHeapMb: 512 }, {})
step('starting Kafka and PostgreSQL for the tests…')
const t0 = Date.now()
const services = await startServices(config, createLogger('test-services', 'warn'))
step(
  `services up in ${Date.now() - t0} ms: Kafka ${services.kafkaBrokers}, PostgreSQL ${maskPasswords(services.databaseUrl)}`,
)
rememberSecret(decodeURIComponent(new URL(services.databaseUrl).password), dataDir)
// The broker's users, the controller's login included: none may appear in any log.
for (const password of Object.values(kafkaSecrets(dataDir))) rememberSecret(password, dataDir)

// Interrupted (Ctrl-C, a CI timeout): stop the services rather than leave them running.
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    step(`${sig}: stopping the test services…`)
    void services.stop().finally(() => process.exit(130))
  })
}

let code = 1
const output: Buffer[] = []
try {
  code = await new Promise<number>((resolve) => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', '--test', '--test-reporter=spec', ...testFiles],
      {
        cwd: repoRoot,
        // The output is shown and kept: the secret scan below reads it.
        stdio: ['inherit', 'pipe', 'pipe'],
        env: {
          ...process.env,
          EVF_TEST_KAFKA_BROKERS: services.kafkaBrokers,
          // Tests log in as admin (their topics are their own); the components' users are for
          // test/integration/kafka-security.test.ts, which checks their ACLs.
          EVF_TEST_KAFKA_USERNAME: services.kafka.admin.kafkaUsername,
          EVF_TEST_KAFKA_PASSWORD: services.kafka.admin.kafkaPassword,
          EVF_TEST_KAFKA_ETL_PASSWORD: services.kafka.etl.kafkaPassword,
          EVF_TEST_KAFKA_SIMULATOR_PASSWORD: services.kafka.simulator.kafkaPassword,
          EVF_TEST_DATABASE_URL: services.databaseUrl,
          // Where the broker keeps its partitions' logs (a test corrupts a stored batch there).
          EVF_TEST_KAFKA_DATA: join(dataDir, 'kafka', 'data'),
          EVF_LOG_LEVEL: process.env.EVF_LOG_LEVEL ?? 'warn',
        },
      },
    )
    child.stdout?.on('data', (d: Buffer) => {
      process.stdout.write(d)
      output.push(d)
    })
    child.stderr?.on('data', (d: Buffer) => {
      process.stderr.write(d)
      output.push(d)
    })
    child.on('close', (c) => resolve(c ?? 1))
  })
} finally {
  step('stopping the test services…')
  await services.stop()
}
// Secrets never reach a log: every secret the services and the tests generated (tokens, passwords)
// is looked for in the whole run's output and in every log file the run wrote.
const leaks = scanForSecrets(dataDir, Buffer.concat(output).toString('utf8'))
for (const leak of leaks) step(`SECRET LEAKED: ${leak}`)
if (leaks.length > 0) code = code || 1
else step(`secret scan: ${secretsOf(dataDir).length} secrets, none in the output or the logs`)
process.exit(code)
