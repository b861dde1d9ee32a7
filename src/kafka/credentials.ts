import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { type Config, settings } from '../config/index.ts'
import { mkdirPrivate } from '../shared/fs.ts'

/**
 * The embedded broker's principals (docs/security.md, "Kafka"): `admin` (a super user: creates
 * topics and ACLs), `etl` (reads the station topics, uses its groups), `simulator` (writes the
 * station topics), `ingest` (writes the station topics what devices send). `controller` is the KRaft controller listener's own login, never a client's.
 */
export const KAFKA_USERS = ['admin', 'etl', 'simulator', 'ingest'] as const
export type KafkaUser = (typeof KAFKA_USERS)[number]
export type KafkaSecrets = Record<KafkaUser | 'controller', string>

const ALL = [...KAFKA_USERS, 'controller'] as const

export const kafkaSecretsFile = (dataDir: string): string => join(dataDir, 'secrets', 'kafka.json')

/** The stored passwords, or undefined when this data directory has none yet. */
export function readKafkaSecrets(dataDir: string): Partial<KafkaSecrets> | undefined {
  const file = kafkaSecretsFile(dataDir)
  if (!existsSync(file)) return undefined
  return JSON.parse(readFileSync(file, 'utf8')) as Partial<KafkaSecrets>
}

/**
 * The passwords of the embedded broker's users, generated once per data directory into
 * `secrets/kafka.json` (0600). A user without one (a new directory, or an entry removed to rotate
 * it) gets a new one; the broker applies them at its next start. base64url: SCRAM's credential
 * syntax takes no `,` and JAAS no `"`.
 */
export function kafkaSecrets(dataDir: string): KafkaSecrets {
  const known = readKafkaSecrets(dataDir) ?? {}
  const missing = ALL.filter((u) => !known[u])
  const all = { ...known }
  for (const u of missing) all[u] = randomBytes(24).toString('base64url')
  if (missing.length > 0) {
    mkdirPrivate(join(dataDir, 'secrets'))
    writeFileSync(kafkaSecretsFile(dataDir), `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
  }
  return all as KafkaSecrets
}

/** What a Kafka client needs: where the brokers are and how to log in. `Config` is one. */
export type KafkaSettings = Pick<
  Config,
  'kafkaBrokers' | 'kafkaSaslMechanism' | 'kafkaUsername' | 'kafkaPassword' | 'kafkaCaFile'
>

/** `user`'s SCRAM-SHA-512 login to `brokers`, over TLS when the CA file `caFile` is given. */
export const scramLogin = (brokers: string, user: string, password: string, caFile = ''): KafkaSettings => ({
  kafkaBrokers: brokers,
  kafkaSaslMechanism: 'scram-sha-512',
  kafkaUsername: user,
  kafkaPassword: password,
  kafkaCaFile: caFile,
})

/**
 * The environment that hands these settings to a child process (names from the settings table).
 * A child is a client: the embedded broker's keystore and its password are the stack's alone, so
 * they are blanked even when the stack's own environment has them.
 */
export function kafkaEnv(k: KafkaSettings): Record<string, string> {
  return {
    [settings.kafkaBrokers.env]: k.kafkaBrokers,
    [settings.kafkaSaslMechanism.env]: k.kafkaSaslMechanism,
    [settings.kafkaUsername.env]: k.kafkaUsername,
    [settings.kafkaPassword.env]: k.kafkaPassword,
    [settings.kafkaCaFile.env]: k.kafkaCaFile,
    [settings.kafkaKeystore.env]: '',
    [settings.kafkaKeystorePassword.env]: '',
  }
}
