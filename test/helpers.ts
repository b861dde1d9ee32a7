import { type ChildProcess, spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import pg from 'pg'
import { allTopics } from '../src/catalog/index.ts'
import { type Config, loadConfig, type Overrides } from '../src/config/index.ts'
import { createPool, migrate, type Pool } from '../src/db/index.ts'
import { createAdmin, createProducer, ensureTopics, kafkaEnv } from '../src/kafka/index.ts'
import { createLogger } from '../src/shared/log.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { childPids } from '../src/shared/process.ts'

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

/** Runs the built CLI (`dist/cli.js`, built by `npm test`'s setup step) as a user would. */
export function cli(args: string[], env: Record<string, string> = {}, nodeArgs: string[] = []): ChildProcess {
  return spawn(process.execPath, [...nodeArgs, `${repoRoot}dist/cli.js`, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
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

/** Polls `fn` every 100 ms until it is true; fails the test after `timeoutMs`, naming `what`. */
export async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (await fn()) return
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
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
