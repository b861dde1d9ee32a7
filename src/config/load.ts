import { isAbsolute, resolve } from 'node:path'
import type { z } from 'zod'
import { PipelineError } from '../errors/index.ts'
import { type Config, flagFor, type Setting, type SettingKey, settings } from './settings.ts'

export type Overrides = Partial<Record<SettingKey, string | number | boolean | undefined>>

/**
 * The only place that reads the environment. Precedence: CLI flag, then environment variable,
 * then default. A bad value stops start-up with the setting's name, where it came from, and
 * what is allowed.
 */
export function loadConfig(overrides: Overrides = {}, env: NodeJS.ProcessEnv = process.env): Config {
  const out: Record<string, unknown> = {}
  const problems: string[] = []
  for (const [key, def] of Object.entries(settings) as [SettingKey, (typeof settings)[SettingKey]][]) {
    const fromFlag = overrides[key]
    const fromEnv = env[def.env]
    const raw = fromFlag !== undefined ? String(fromFlag) : fromEnv === '' ? undefined : fromEnv
    const source =
      fromFlag !== undefined ? `flag ${flagFor(key)}` : raw !== undefined ? `env ${def.env}` : 'default'
    const parsed = def.schema.safeParse(raw)
    if (parsed.success) out[key] = parsed.data
    else problems.push(`${key} (${source}) = ${JSON.stringify(raw)}: ${describeIssues(parsed.error)}`)
  }
  if (problems.length === 0) problems.push(...crossChecks(out as Config))
  if (problems.length > 0) {
    throw new PipelineError('CONFIG_INVALID', `Invalid configuration:\n  - ${problems.join('\n  - ')}`)
  }
  const config = out as Config
  config.dataDir = isAbsolute(config.dataDir) ? config.dataDir : resolve(config.dataDir)
  return config
}

const LOOPBACK = new Set(['127.0.0.1', '::1', 'localhost'])

/** Rules between settings: each names both keys and what is allowed. */
function crossChecks(config: Config): string[] {
  const problems: string[] = []
  if (config.apiAuth === 'off' && !LOOPBACK.has(config.apiHost)) {
    problems.push(
      `apiAuth = "off" with apiHost = ${JSON.stringify(config.apiHost)}: the API answers without authentication only on a loopback address (127.0.0.1, ::1, localhost), where no other machine can reach it; turn apiAuth on or bind to loopback`,
    )
  }
  if (config.kafkaSaslMechanism !== 'none' && !(config.kafkaUsername && config.kafkaPassword)) {
    problems.push(
      `kafkaSaslMechanism = "${config.kafkaSaslMechanism}" needs kafkaUsername and kafkaPassword (KAFKA_USERNAME, KAFKA_PASSWORD)`,
    )
  }
  if (config.kafkaSaslMechanism === 'none' && config.kafkaUsername) {
    problems.push(
      'kafkaUsername is set but kafkaSaslMechanism is "none": set EVF_KAFKA_SASL_MECHANISM=scram-sha-512, or unset KAFKA_USERNAME',
    )
  }
  if (config.alarmWebhookUrl && config.alarmWebhookSecret.length < 16) {
    problems.push(
      'alarmWebhookUrl is set: alarmWebhookSecret (EVF_ALARM_WEBHOOK_SECRET) must be at least 16 characters, the key its notifications are signed with',
    )
  }
  if (Boolean(config.smtpUrl) !== Boolean(config.alarmEmailTo)) {
    problems.push(
      'smtpUrl and alarmEmailTo (EVF_SMTP_URL, EVF_ALARM_EMAIL_TO): give both (alarm e-mail) or neither',
    )
  }
  if (Boolean(config.apiTlsCert) !== Boolean(config.apiTlsKey)) {
    problems.push('apiTlsCert and apiTlsKey: give both (HTTPS) or neither (HTTP)')
  }
  return problems
}

function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => {
      if (issue.code === 'invalid_value') return `allowed values are ${issue.values.map(String).join(', ')}`
      if (issue.code === 'too_small') return `must be ≥ ${issue.minimum}`
      if (issue.code === 'too_big') return `must be ≤ ${issue.maximum}`
      return issue.message
    })
    .join('; ')
}

/** The environment that hands this config to a child process, so children agree with the parent. */
export function configToEnv(config: Config): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, def] of Object.entries(settings) as [SettingKey, Setting][]) {
    const value = config[key]
    env[def.env] = def.toEnv ? def.toEnv(value) : Array.isArray(value) ? value.join(',') : String(value)
  }
  return env
}
