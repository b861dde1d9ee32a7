import { type Command, Option } from 'commander'
import { type Config, flagFor, loadConfig, type Setting, type SettingKey, settings } from '../config/index.ts'
import type { createPool, Pool } from '../db/index.ts'
import type { KafkaUser } from '../kafka/credentials.ts'
import type { Logger } from '../shared/log.ts'
import { watchParent } from '../shared/process.ts'

// What the commands share: their flags from the settings table, their config, a pool, a signal.

const ALL = Object.keys(settings) as SettingKey[]
const KAFKA: SettingKey[] = [
  'logLevel',
  'kafkaBrokers',
  'kafkaSaslMechanism',
  'kafkaUsername',
  'kafkaPassword',
  'kafkaCaFile',
  'topicPrefix',
  'topicPartitions',
]
const DB: SettingKey[] = ['logLevel', 'databaseUrl']

/** The settings each kind of command takes as flags. */
export const SETTINGS = {
  ALL,
  KAFKA,
  DB,
  MAINTAIN: [...DB, 'retentionDays'],
  ETL: [...KAFKA, 'databaseUrl', ...ALL.filter((k) => k.startsWith('etl'))],
  CATALOG: [...DB, 'catalog', 'topicPrefix'],
  SIM: [
    ...KAFKA,
    'databaseUrl',
    'catalog',
    'dataDir',
    ...ALL.filter(
      (k) => k.startsWith('sim') || k.startsWith('mqtt') || k.startsWith('opcua') || k === 'sparkplugHostId',
    ),
  ],
  INGEST: [
    ...KAFKA,
    'databaseUrl',
    'dataDir',
    ...ALL.filter(
      (k) => k.startsWith('sim') || k.startsWith('mqtt') || k.startsWith('opcua') || k === 'sparkplugHostId',
    ),
  ],
  ALARMS: [...DB, 'catalog', 'etlStallSec', ...ALL.filter((k) => k.startsWith('alarm') || k === 'smtpUrl')],
  API: [
    ...DB,
    'apiHost',
    'apiPort',
    'apiAuth',
    'databaseReadUrl',
    'apiAuthFailures',
    'apiTlsCert',
    'apiTlsKey',
    'apiCorsOrigins',
    'apiRateLimit',
    'apiStatementTimeoutMs',
    'apiCacheMs',
    'etlStallSec',
    'alarmEvaluator',
    'smtpUrl',
    'alarmEmailTo',
    'alarmEmailFrom',
    'alarmWebhookUrl',
    'alarmWebhookSecret',
    'alarmRoutes',
    'alarmGroupWaitMs',
    'alarmRepeatMs',
    'alarmFloodLimit',
  ],
} satisfies Record<string, SettingKey[]>

/**
 * Adds a `--flag <value>` for each setting; the environment variable and default are in the help.
 * A yes/no setting's value is optional: `--postgres-replica` alone means true. A repeatable list's
 * flag given twice keeps both values (`--sim-fault a --sim-fault b` is `--sim-fault a,b`).
 */
export function withSettings(cmd: Command, keys: SettingKey[]): Command {
  for (const key of keys) {
    const def: Setting = settings[key]
    const yesNo = def.schema.safeParse('yes').data === true
    const option = new Option(
      `${flagFor(key)} ${yesNo ? '[value]' : '<value>'}`,
      `${def.doc} [env ${def.env}]`,
    )
    if (def.repeatable)
      option.argParser((value: string, earlier: string | undefined) =>
        earlier ? `${earlier},${value}` : value,
      )
    cmd.addOption(option)
  }
  return cmd
}

/**
 * Turns the command's flags into the validated config (a bad value is CONFIG_INVALID, exit 2),
 * with the endpoints it `needs` found in a running stack's `stack.json` when they are not set.
 * That file is read by `stack/endpoints.ts` alone, not through stack/index.ts, whose modules (the
 * Kafka client, Fastify: 0.3 s and 50 MB) a command next to a running stack need not load.
 */
export async function configOf(
  cmd: Command,
  needs: ('kafka' | 'database')[] = [],
  kafkaUser?: KafkaUser,
): Promise<Config> {
  const config = loadConfig(cmd.opts())
  if (needs.every((n) => (n === 'kafka' ? config.kafkaBrokers : config.databaseUrl))) return config
  const { withEndpoints } = await import('../stack/endpoints.ts')
  return withEndpoints(config, needs, kafkaUser)
}

/** Runs `fn` with a pool on the configured database (one connection unless told), then ends it. */
export async function withPool<T>(
  config: Config,
  fn: (pool: Pool) => Promise<T>,
  options: Parameters<typeof createPool>[1] = { max: 1 },
): Promise<T> {
  const db = await import('../db/index.ts')
  const pool = db.createPool(config.databaseUrl, options)
  try {
    return await fn(pool)
  } finally {
    await pool.end()
  }
}

/** Runs until SIGINT/SIGTERM, then aborts the signal so the work drains. */
export function untilSignal(): AbortSignal {
  const controller = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort())
  if (process.env.EVF_SUPERVISED) watchParent(controller)
  return controller.signal
}

export const dbLost = (log: Logger) => (error: Error) =>
  log.warn({ err: error.message }, 'lost a database connection')
