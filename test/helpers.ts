import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { type Config, loadConfig, type Overrides } from '../src/config/index.ts'
import { createPool, migrate, type Pool } from '../src/db/index.ts'
import { createAdmin, createProducer, ensureTopics, kafkaEnv } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { childPids } from '../src/shared/process.ts'
import { allTopics } from './plant.ts'

export const log = createLogger('test', process.env.EVF_LOG_LEVEL ?? 'warn')

function required(name: string): string {
  const v = process.env[name]
  if (!v)
    throw new Error(`${name} is not set: run the tests with \`npm test\`, which starts Kafka and PostgreSQL`)
  return v
}

/**
 * A config of its own for one test: a fresh database (migrated) on the test server and a topic
 * prefix no other test uses, logged in to the test broker as its super user `admin` (a test's
 * topics are outside the components' ACLs; test/integration/kafka-security.test.ts checks those).
 * Cleanup is registered on the test context.
 */
export async function isolatedConfig(
  t: TestContext,
  overrides: Overrides = {},
): Promise<{ config: Config; pool: Pool }> {
  const id = randomUUID().slice(0, 8)
  const serverUrl = required('EVF_TEST_DATABASE_URL')
  const database = `evf_test_${id}`
  const admin = new pg.Client({ connectionString: serverUrl })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${database}`)
  await admin.end()
  const url = new URL(serverUrl)
  url.pathname = `/${database}`
  const config = loadConfig(
    {
      kafkaBrokers: required('EVF_TEST_KAFKA_BROKERS'),
      kafkaSaslMechanism: 'scram-sha-512',
      kafkaUsername: required('EVF_TEST_KAFKA_USERNAME'),
      kafkaPassword: required('EVF_TEST_KAFKA_PASSWORD'),
      databaseUrl: url.toString(),
      topicPrefix: `t${id}.`,
      etlGroupId: `evf-etl-${id}`,
      logLevel: process.env.EVF_LOG_LEVEL ?? 'warn',
      ...overrides,
    },
    {},
  )
  const pool = createPool(config.databaseUrl, { max: 4 })
  t.after(async () => {
    await pool.end()
    const c = new pg.Client({ connectionString: serverUrl })
    await c.connect()
    await c.query(`DROP DATABASE IF EXISTS ${database} WITH (FORCE)`)
    await c.end()
  })
  await migrate(pool)
  const kafka = createAdmin(config, 'evf-test-admin')
  await ensureTopics(kafka, allTopics(config.topicPrefix), config.topicPartitions, log)
  await kafka.close()
  return { config, pool }
}

export interface RawMessage {
  topic: string
  key?: Buffer | string | null
  value: Buffer | string | null
  headers?: Record<string, string>
}

/** Sends messages exactly as given (any bytes), for tests that need malformed input. */
export async function produceRaw(config: Config, messages: RawMessage[]): Promise<void> {
  const producer = createProducer(config, 'evf-test-producer')
  try {
    await producer.send({
      messages: messages.map((m) => ({
        topic: m.topic,
        key: m.key == null ? undefined : Buffer.from(m.key),
        value: m.value == null ? undefined : Buffer.from(m.value),
        headers: m.headers
          ? new Map(Object.entries(m.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)]))
          : undefined,
      })) as Parameters<typeof producer.send>[0]['messages'],
    })
  } finally {
    await producer.close()
  }
}

/**
 * The built CLI (`dist/cli.js`, built by `npm test`'s setup step) run as a user would: the one
 * way tests start `evf`. `cleanEnv` gives it only PATH and `env`, not the test's environment.
 */
export function cli(
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
  { cleanEnv = false }: { cleanEnv?: boolean } = {},
): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, `${repoRoot}dist/cli.js`, ...args], {
    cwd: repoRoot,
    env: cleanEnv ? { PATH: process.env.PATH ?? '', ...env } : { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
}

export function collect(
  child: ChildProcess,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d) => (stdout += d))
  child.stderr?.on('data', (d) => (stderr += d))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })))
}

/** `evf <args>` to its end: its stdout, or an error with its stderr if it exits non-zero. */
export async function runCli(
  args: string[],
  env: Record<string, string> = {},
  opts: { cleanEnv?: boolean } = {},
): Promise<string> {
  const r = await collect(cli(args, env, [], opts))
  if (r.code !== 0) throw new Error(`evf ${args.join(' ')} exited with ${r.code}: ${r.stderr.slice(-2000)}`)
  return r.stdout
}

/** The environment that points a CLI child at this test's Kafka (with its login), database and topics. */
export function envOf(config: Config): Record<string, string> {
  return {
    ...kafkaEnv(config),
    DATABASE_URL: config.databaseUrl,
    EVF_TOPIC_PREFIX: config.topicPrefix,
    EVF_ETL_GROUP_ID: config.etlGroupId,
    EVF_LOG_LEVEL: config.logLevel,
  }
}

export async function count(pool: Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query<{ n: string }>(sql, params)
  return Number(rows[0]?.n ?? 0)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Polls `fn` (every `everyMs`, 100 by default) until it gives a value other than false or
 * undefined, and returns it; after `timeoutMs` fails the test, naming `what` (and `detail()`,
 * e.g. a child's output). With `retryErrors`, a throw counts as "not yet" (a server still
 * starting).
 */
export async function waitFor<T>(
  what: string,
  fn: () => T | false | undefined | Promise<T | false | undefined>,
  timeoutMs: number,
  opts: { everyMs?: number; retryErrors?: boolean; detail?: () => string } = {},
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const v = await (opts.retryErrors
      ? Promise.resolve()
          .then(fn)
          .catch(() => undefined)
      : fn())
    if (v !== false && v !== undefined) return v
    if (Date.now() >= deadline)
      throw new Error(`timed out waiting for ${what}${opts.detail ? `; output:\n${opts.detail()}` : ''}`)
    await sleep(opts.everyMs ?? 100)
  }
}

/** SIGKILL to a CLI child and the processes it started (`etl follow`'s workers), as a crash would. */
export function killTree(child: ChildProcess): void {
  for (const pid of childPids(child.pid ?? 0)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
  child.kill('SIGKILL')
}
