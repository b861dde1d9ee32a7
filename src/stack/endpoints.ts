import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
// Not kafka/index.ts: the CLI loads this module at start, and the Kafka client is heavy.
import { type KafkaUser, readKafkaSecrets } from '../kafka/credentials.ts'

interface Endpoints {
  kafkaBrokers: string
  /** the CA of the embedded broker's TLS (`EVF_KAFKA_KEYSTORE`); empty or absent: no TLS */
  kafkaCaFile?: string
  databaseUrl: string
  pid: number
}

const file = (config: Config) => join(config.dataDir, 'stack.json')

/** `stack up` records where its services are, so that any `evf` command can find them. */
export function writeEndpoints(config: Config, endpoints: Omit<Endpoints, 'pid'>): void {
  writeFileSync(file(config), `${JSON.stringify({ ...endpoints, pid: process.pid }, null, 2)}\n`, {
    mode: 0o600,
  })
}

export function removeEndpoints(config: Config): void {
  rmSync(file(config), { force: true })
}

/**
 * Fills `kafkaBrokers` and `databaseUrl` when they are not set: from the running stack in the
 * same data directory, with `kafkaUser`'s login to its broker when no user is set, and its CA when
 * the broker speaks TLS. Without one, the error says what to set or start.
 */
export function withEndpoints(
  config: Config,
  needs: ('kafka' | 'database')[],
  kafkaUser?: KafkaUser,
): Config {
  const missing = needs.filter((n) => (n === 'kafka' ? !config.kafkaBrokers : !config.databaseUrl))
  if (missing.length === 0) return config
  const running = readRunning(config)
  if (!running) {
    const vars = missing.map((n) => (n === 'kafka' ? 'KAFKA_BROKERS' : 'DATABASE_URL')).join(' and ')
    throw new PipelineError(
      'CONFIG_INVALID',
      `${vars} not set and no stack is running in ${config.dataDir}: start one with \`npm start\`, or set ${vars}`,
    )
  }
  return {
    ...config,
    ...(missing.includes('kafka') ? stackLogin(config, kafkaUser) : {}),
    kafkaBrokers: config.kafkaBrokers || running.kafkaBrokers,
    kafkaCaFile: missing.includes('kafka')
      ? config.kafkaCaFile || running.kafkaCaFile || ''
      : config.kafkaCaFile,
    databaseUrl: config.databaseUrl || running.databaseUrl,
  }
}

/** `user`'s login to the running stack's embedded broker, from `<dataDir>/secrets/kafka.json`. */
function stackLogin(config: Config, user: KafkaUser | undefined): Partial<Config> {
  const password = user && !config.kafkaUsername ? readKafkaSecrets(config.dataDir)?.[user] : undefined
  if (!user || !password) return {}
  return { kafkaSaslMechanism: 'scram-sha-512', kafkaUsername: user, kafkaPassword: password }
}

function readRunning(config: Config): Endpoints | undefined {
  if (!existsSync(file(config))) return undefined
  const endpoints = JSON.parse(readFileSync(file(config), 'utf8')) as Endpoints
  try {
    process.kill(endpoints.pid, 0)
    return endpoints
  } catch {
    return undefined // a stale file from a stack that was killed
  }
}
