import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { Cron } from 'croner'
import { z } from 'zod'
import { DEFAULT_CATALOG } from '../catalog/index.ts'
import { formatSimFault, parseSimFaults, SIM_FAULT_FORM } from './sim-fault.ts'

/**
 * Every setting of the project, in one table: its environment variable, its CLI flag (derived
 * from the key), its schema and default, and the sentence the README prints for it. The config
 * loader, the CLI and the README's settings table all read this table; a test keeps the README
 * in step with it.
 */
export interface Setting<T extends z.ZodType = z.ZodType> {
  env: string
  doc: string
  schema: T
  /** A list whose flag may be given more than once: the values join as if separated by commas. */
  repeatable?: boolean
  /** Its value as its environment variable again, for a child (default: `String`, lists joined by commas). */
  toEnv?(value: z.output<T>): string
}
const setting = <T extends z.ZodType>(
  env: string,
  doc: string,
  schema: T,
  more: Pick<Setting<T>, 'repeatable' | 'toEnv'> = {},
): Setting<T> => ({ env, doc, schema, ...more })

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max)
const port = int(1, 65535)
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes')

function isCron(expr: string): boolean {
  try {
    new Cron(expr, { paused: true }).stop()
    return true
  } catch {
    return false
  }
}

export const settings = {
  dataDir: setting(
    'EVF_DATA_DIR',
    'Where the stack keeps its Kafka log dirs and PostgreSQL cluster',
    z.string().min(1).default('.stack'),
  ),
  logLevel: setting(
    'EVF_LOG_LEVEL',
    'Log level of every component',
    z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
  ),
  kafkaBrokers: setting(
    'KAFKA_BROKERS',
    'Comma-separated Kafka bootstrap brokers; set it to use an existing cluster and start none',
    z.string().default(''),
  ),
  kafkaSaslMechanism: setting(
    'EVF_KAFKA_SASL_MECHANISM',
    'SASL mechanism of the Kafka clients (`none` or `scram-sha-512`); the embedded broker always takes SCRAM-SHA-512 and `stack up` gives each component its own user',
    z.enum(['none', 'scram-sha-512']).default('none'),
  ),
  kafkaUsername: setting(
    'KAFKA_USERNAME',
    'Kafka SASL user; empty next to a running stack: the command’s own user from `<dataDir>/secrets/kafka.json`',
    z.string().default(''),
  ),
  kafkaPassword: setting(
    'KAFKA_PASSWORD',
    'Password of `KAFKA_USERNAME` (masked by `evf config`, never logged)',
    z.string().default(''),
  ),
  kafkaCaFile: setting(
    'KAFKA_CA_FILE',
    'PEM file of the CA that signed the brokers’ certificates: set, the Kafka clients connect with TLS (SASL_SSL)',
    z.string().default(''),
  ),
  kafkaKeystore: setting(
    'EVF_KAFKA_KEYSTORE',
    'PKCS12 keystore of the embedded broker (a key, its certificate for 127.0.0.1): set, it listens with SASL_SSL and `stack up` hands the components its CA (`evf tls kafka-keystore`)',
    z.string().default(''),
  ),
  kafkaKeystorePassword: setting(
    'EVF_KAFKA_KEYSTORE_PASSWORD',
    'Password of `EVF_KAFKA_KEYSTORE` and its key (masked by `evf config`, never logged, not handed to the components)',
    z.string().default(''),
  ),
  kafkaPort: setting('EVF_KAFKA_PORT', 'Port of the embedded broker', port.default(9092)),
  kafkaControllerPort: setting(
    'EVF_KAFKA_CONTROLLER_PORT',
    'KRaft controller port of the embedded broker',
    port.default(9093),
  ),
  kafkaNodes: setting(
    'EVF_KAFKA_NODES',
    'KRaft nodes (broker+controller) of the embedded Kafka: 1, or 3 or more for a cluster with replication factor 3 and min.insync.replicas=2; node i listens on EVF_KAFKA_PORT + 2(i-1)',
    int(1, 9).default(1),
  ),
  kafkaHeapMb: setting(
    'EVF_KAFKA_HEAP_MB',
    'Maximum JVM heap of the embedded broker, in MiB',
    int(256).default(768),
  ),
  catalog: setting(
    'EVF_CATALOG',
    'The plant catalog file (docs/catalog.md): `stack up` and `db migrate` apply it when it changed',
    z
      .string()
      .min(1)
      .default('catalog/plant.yaml')
      // Relative to the working directory; the default is the project's own file from anywhere.
      .transform((p) => (p === 'catalog/plant.yaml' && !existsSync(p) ? DEFAULT_CATALOG : resolve(p))),
  ),
  topicPrefix: setting(
    'EVF_TOPIC_PREFIX',
    'Prefix of the station topics (`<prefix><station>`)',
    z
      .string()
      .regex(/^[a-zA-Z0-9._-]*$/, 'only letters, digits, ".", "_" and "-"')
      .default('sensor.'),
  ),
  topicPartitions: setting(
    'EVF_TOPIC_PARTITIONS',
    'Partitions of each station topic',
    int(1, 1000).default(3),
  ),
  databaseUrl: setting(
    'DATABASE_URL',
    'PostgreSQL connection URL; set it to use an existing server and start none',
    z.string().default(''),
  ),
  databaseReadUrl: setting(
    'DATABASE_READ_URL',
    'PostgreSQL URL the API reads readings and statistics from (a hot standby); empty: DATABASE_URL',
    z.string().default(''),
  ),
  postgresReplica: setting(
    'EVF_POSTGRES_REPLICA',
    'Whether `stack up` also starts a hot standby of the embedded PostgreSQL (streaming replication) and has the API read from it',
    bool.default(false),
  ),
  databasePort: setting(
    'EVF_DATABASE_PORT',
    'Port of the embedded PostgreSQL server (0: a free port)',
    int(0, 65535).default(0),
  ),
  simIntervalMs: setting(
    'EVF_SIM_INTERVAL_MS',
    'Milliseconds between two readings of one sensor',
    int(1).default(5000),
  ),
  simSensorsPerStation: setting(
    'EVF_SIM_SENSORS_PER_STATION',
    'Simulated sensors on each station',
    int(1, 10000).default(2),
  ),
  simDurationSec: setting(
    'EVF_SIM_DURATION_SEC',
    'Stop the simulator after this many seconds (0: run until stopped)',
    int(0).default(0),
  ),
  simCount: setting(
    'EVF_SIM_COUNT',
    'Stop after producing this many readings, as fast as the broker takes them (0: paced by the interval)',
    int(0).default(0),
  ),
  simSeed: setting('EVF_SIM_SEED', 'Seed of the simulator (same seed, same readings)', int(0).default(42)),
  simFaultRate: setting(
    'EVF_SIM_FAULT_RATE',
    'Probability that a reading is a fault (a spike outside the spec limits)',
    z.coerce.number().min(0).max(1).default(0.01),
  ),
  simFault: setting(
    'EVF_SIM_FAULT',
    'Faults the simulator injects from its start (comma-separated, or the flag repeated): `mean-shift:<station>.<measurement>:<sigmas>` moves its mean by sigmas × its simulation noise',
    z
      .string()
      .default('')
      .transform((text, ctx) => {
        const { faults, problems } = parseSimFaults(text)
        if (problems.length > 0)
          ctx.issues.push({
            code: 'custom',
            input: text,
            message: `${problems.join('; ')}; allowed: ${SIM_FAULT_FORM}`,
          })
        return faults
      }),
    { repeatable: true, toEnv: (faults) => faults.map(formatSimFault).join(',') },
  ),
  simStations: setting(
    'EVF_SIM_STATIONS',
    'Comma-separated stations to simulate (empty: every station of the catalog)',
    z
      .string()
      .default('')
      .transform((s) =>
        s
          .split(',')
          .map((x) => x.trim())
          .filter(Boolean),
      ),
  ),
  simCatalogFrom: setting(
    'EVF_SIM_CATALOG_FROM',
    'Which catalog the simulator simulates: the file (`EVF_CATALOG`) or the one applied in the database, followed live (`stack up` uses the database)',
    z.enum(['file', 'database']).default('file'),
  ),
  simTransport: setting(
    'EVF_SIM_TRANSPORT',
    'How the simulator sends its readings: to Kafka directly, or as a device would, to an MQTT broker (our JSON, or Sparkplug B) or from an OPC UA server it hosts; `evf ingest` brings them in (docs/devices.md)',
    z.enum(['kafka', 'mqtt', 'sparkplug', 'opcua']).default('kafka'),
  ),
  etlMode: setting(
    'EVF_ETL_MODE',
    'How `stack up` runs the ETL: continuously, on a cron schedule, or not at all',
    z.enum(['continuous', 'schedule', 'off']).default('continuous'),
  ),
  etlSchedule: setting(
    'EVF_ETL_SCHEDULE',
    'Cron expression of scheduled ETL runs (the reference DAG runs every 5 minutes)',
    z
      .string()
      .default('*/5 * * * *')
      .refine(isCron, 'not a cron expression; e.g. "*/5 * * * *" (every 5 minutes)'),
  ),
  etlBatchSize: setting(
    'EVF_ETL_BATCH_SIZE',
    'Most messages loaded in one transaction',
    int(1, 1_000_000).default(5000),
  ),
  etlLingerMs: setting(
    'EVF_ETL_LINGER_MS',
    'Longest a partial batch waits for more messages before it is loaded',
    int(0, 60_000).default(200),
  ),
  etlMaxAgeDays: setting(
    'EVF_ETL_MAX_AGE_DAYS',
    'Readings older than this many days are dead-lettered (TIMESTAMP_TOO_OLD)',
    z.coerce.number().positive().default(30),
  ),
  etlFutureToleranceSec: setting(
    'EVF_ETL_FUTURE_TOLERANCE_SEC',
    'Readings dated more than this many seconds ahead are dead-lettered (TIMESTAMP_IN_FUTURE)',
    int(0).default(300),
  ),
  etlMaxMessageBytes: setting(
    'EVF_ETL_MAX_MESSAGE_BYTES',
    'Larger message values are dead-lettered (VALUE_TOO_LARGE)',
    int(64).default(65_536),
  ),
  etlRetryForSec: setting(
    'EVF_ETL_RETRY_FOR_SEC',
    'How long `etl run` keeps retrying while Kafka or PostgreSQL is unreachable before it exits (3 or 4)',
    int(0).default(300),
  ),
  etlWorkers: setting(
    'EVF_ETL_WORKERS',
    'ETL worker processes of `etl follow` (one consumer group; partitions are split between them)',
    int(1, 64).default(1),
  ),
  etlHeapMb: setting(
    'EVF_ETL_HEAP_MB',
    'V8 old-space limit of the ETL worker processes that evf starts (--max-old-space-size), bounding their memory',
    int(64).default(224),
  ),
  etlStallSec: setting(
    'EVF_ETL_STALL_SEC',
    'A continuous ETL with messages waiting and no commit for this many seconds is stalled: logged, reported by /ready, /metrics and the dashboard, and its workers restarted',
    int(5, 3600).default(30),
  ),
  etlGroupId: setting(
    'EVF_ETL_GROUP_ID',
    'Kafka consumer group of the ETL workers',
    z.string().min(1).default('evf-etl'),
  ),
  orchestrator: setting(
    'EVF_ORCHESTRATOR',
    'Who runs the ETL under `stack up`: the built-in runner (etlMode) or Apache Airflow 3 (the DAG in airflow/dags, every etlSchedule)',
    z.enum(['builtin', 'airflow']).default('builtin'),
  ),
  airflowPort: setting(
    'EVF_AIRFLOW_PORT',
    'Port of the Airflow UI and API when the orchestrator is Airflow',
    port.default(8080),
  ),
  apiHost: setting('EVF_API_HOST', 'Address the API listens on', z.string().min(1).default('127.0.0.1')),
  apiPort: setting('EVF_API_PORT', 'Port of the API and dashboard', int(0, 65535).default(8000)),
  apiAuth: setting(
    'EVF_API_AUTH',
    'API authentication: `on` (bearer tokens with scopes, a login cookie for the dashboard) or `off`, allowed only with a loopback `EVF_API_HOST`',
    z.enum(['on', 'off']).default('on'),
  ),
  apiAuthFailures: setting(
    'EVF_API_AUTH_FAILURES',
    'Failed authentications one client address may make per minute before its bad credentials get 429 for the rest of the minute (valid ones are still served; 0: no limit)',
    int(0).default(20),
  ),
  apiTlsCert: setting(
    'EVF_API_TLS_CERT',
    'PEM certificate (chain) file: with `EVF_API_TLS_KEY`, the API serves HTTPS with HSTS (`evf tls self-signed` makes a pair)',
    z.string().default(''),
  ),
  apiTlsKey: setting('EVF_API_TLS_KEY', 'PEM private key file of `EVF_API_TLS_CERT`', z.string().default('')),
  apiCorsOrigins: setting(
    'EVF_API_CORS_ORIGINS',
    'Comma-separated origins allowed to call the API from a browser (`*` for any); empty: same origin only',
    z
      .string()
      .regex(
        /^(\*|(https?:\/\/[^,\s]+)(,https?:\/\/[^,\s]+)*)?$/,
        'empty, `*`, or http(s) origins separated by commas',
      )
      .default(''),
  ),
  apiRateLimit: setting(
    'EVF_API_RATE_LIMIT',
    'Requests per minute one client address may make (0: no limit)',
    int(0).default(6000),
  ),
  apiStatementTimeoutMs: setting(
    'EVF_API_STATEMENT_TIMEOUT_MS',
    'PostgreSQL statement timeout of every API query, in milliseconds',
    int(100, 600_000).default(5000),
  ),
  apiHeapMb: setting(
    'EVF_API_HEAP_MB',
    'V8 old-space limit of the API process that `stack up` starts (--max-old-space-size): large answers are collected sooner and RSS stays bounded',
    int(64).default(128),
  ),
  apiCacheMs: setting(
    'EVF_API_CACHE_MS',
    'Longest time a read answer is served from the API’s cache; each ETL commit clears it at once (0: no cache)',
    int(0, 60_000).default(1000),
  ),
  retentionDays: setting(
    'EVF_RETENTION_DAYS',
    'Days of readings kept: `db maintain` drops whole daily partitions older than this (0: keep all)',
    int(0).default(0),
  ),
  alarmEvaluator: setting(
    'EVF_ALARM_EVALUATOR',
    'Where alarms are evaluated and delivered: in the API process (`api`; with several, one leads) or not there (`off`: run `evf alarms run` instead, or none)',
    z.enum(['api', 'off']).default('api'),
  ),
  smtpUrl: setting(
    'EVF_SMTP_URL',
    'SMTP server alarm e-mails go through (`smtp://host:port`, `smtps://user:pass@host:port`); empty: no e-mail',
    z
      .string()
      .regex(/^(smtps?:\/\/\S+)?$/, 'empty, or smtp://host:port or smtps://host:port')
      .default(''),
  ),
  alarmEmailTo: setting(
    'EVF_ALARM_EMAIL_TO',
    'Comma-separated addresses alarm e-mails go to (with `EVF_SMTP_URL`)',
    z
      .string()
      .regex(/^([^\s,@]+@[^\s,@]+(,[^\s,@]+@[^\s,@]+)*)?$/, 'empty, or e-mail addresses separated by commas')
      .default(''),
  ),
  alarmEmailFrom: setting(
    'EVF_ALARM_EMAIL_FROM',
    'Sender address of alarm e-mails',
    z
      .string()
      .regex(/^[^\s@]+@[^\s@]+$/, 'an e-mail address')
      .default('evf-alarms@localhost'),
  ),
  alarmWebhookUrl: setting(
    'EVF_ALARM_WEBHOOK_URL',
    'URL alarm notifications are POSTed to as signed JSON; empty: no webhook',
    z
      .string()
      .regex(/^(https?:\/\/\S+)?$/, 'empty, or an http(s) URL')
      .default(''),
  ),
  alarmWebhookSecret: setting(
    'EVF_ALARM_WEBHOOK_SECRET',
    'Secret the webhook body is signed with (HMAC-SHA256, header `X-EVF-Signature`); needed with `EVF_ALARM_WEBHOOK_URL`, at least 16 characters',
    z.string().default(''),
  ),
  alarmRoutes: setting(
    'EVF_ALARM_ROUTES',
    'Who is told of what: space-separated `receiver[:severity,…][@station,…]` (receivers `email`, `webhook`); e.g. `email:critical,high webhook@paint`',
    z
      .string()
      .regex(
        /^\s*((email|webhook)(:[a-z,]+)?(@[A-Za-z0-9_,.-]+)?\s*)*$/,
        'space-separated receiver[:severity,…][@station,…] with receivers email and webhook',
      )
      .default('email webhook'),
  ),
  alarmGroupWaitMs: setting(
    'EVF_ALARM_GROUP_WAIT_MS',
    'How long a station’s first alarm waits for others before one message tells of them all (Alertmanager’s group_wait)',
    int(0, 3_600_000).default(30_000),
  ),
  alarmRepeatMs: setting(
    'EVF_ALARM_REPEAT_MS',
    'How often an alarm still unacknowledged is told again (Alertmanager’s repeat_interval)',
    int(10_000).default(4 * 3_600_000),
  ),
  alarmFloodLimit: setting(
    'EVF_ALARM_FLOOD_LIMIT',
    'Alarms a receiver is told of in 10 minutes before the flood guard sends one summary instead',
    int(1).default(20),
  ),
  mqttUrl: setting(
    'EVF_MQTT_URL',
    'The plant’s MQTT broker (`mqtt://host:1883`, `mqtts://host:8883`); empty: `stack up` starts an embedded Mosquitto when the catalog or `EVF_SIM_TRANSPORT` needs one',
    z
      .string()
      .default('')
      .refine(
        (v) => v === '' || /^(mqtts?|wss?|tcp|ssl):\/\//.test(v),
        'a URL with scheme mqtt://, mqtts://, ws:// or wss://',
      ),
  ),
  mqttUsername: setting(
    'EVF_MQTT_USERNAME',
    'User `evf ingest` logs in to the MQTT broker as',
    z.string().default(''),
  ),
  mqttPassword: setting(
    'EVF_MQTT_PASSWORD',
    'Password of `EVF_MQTT_USERNAME` (masked by `evf config`, never logged)',
    z.string().default(''),
  ),
  mqttCaFile: setting(
    'EVF_MQTT_CA_FILE',
    'PEM file of the CA that signed the MQTT broker’s certificate (for `mqtts://`)',
    z.string().default(''),
  ),
  mqttClientId: setting(
    'EVF_MQTT_CLIENT_ID',
    'The stable client id of `evf ingest`’s persistent MQTT session (Sparkplug uses `<id>-spb`, a clean session)',
    z.string().min(1).max(64).default('evf-ingest'),
  ),
  mqttProtocol: setting(
    'EVF_MQTT_PROTOCOL',
    'MQTT protocol version `evf ingest` speaks: `5` or `3.1.1`',
    z.enum(['5', '3.1.1']).default('5'),
  ),
  mqttMaxInflight: setting(
    'EVF_MQTT_MAX_INFLIGHT',
    'Messages `evf ingest` holds unacknowledged at once (MQTT 5 Receive Maximum): its memory bound while Kafka is slow or down',
    int(1, 65535).default(1000),
  ),
  sparkplugHostId: setting(
    'EVF_SPARKPLUG_HOST_ID',
    'The Sparkplug B host application id: its STATE topic is `spBv1.0/STATE/<id>`',
    z
      .string()
      .regex(/^[^/+#]+$/, 'no /, + or #')
      .default('evf'),
  ),
  opcuaUrl: setting(
    'EVF_OPCUA_URL',
    'The plant’s OPC UA server (`opc.tcp://host:4840`); empty: with `EVF_SIM_TRANSPORT=opcua` the simulator hosts one',
    z
      .string()
      .default('')
      .refine((v) => v === '' || v.startsWith('opc.tcp://'), 'an opc.tcp:// URL'),
  ),
  opcuaSecurityMode: setting(
    'EVF_OPCUA_SECURITY_MODE',
    'OPC UA message security: `SignAndEncrypt` (Basic256Sha256, certificates under `<dataDir>/opcua`) or `None` (only to a loopback server)',
    z.enum(['SignAndEncrypt', 'None']).default('SignAndEncrypt'),
  ),
  opcuaUsername: setting('EVF_OPCUA_USERNAME', 'OPC UA user name (empty: anonymous)', z.string().default('')),
  opcuaPassword: setting(
    'EVF_OPCUA_PASSWORD',
    'Password of `EVF_OPCUA_USERNAME` (masked by `evf config`, never logged)',
    z.string().default(''),
  ),
  simulator: setting('EVF_SIMULATOR', 'Whether `stack up` starts the simulator', bool.default(true)),
} as const

export type SettingKey = keyof typeof settings
export type Config = { [K in SettingKey]: z.output<(typeof settings)[K]['schema']> }

/** `kafkaBrokers` → `--kafka-brokers` */
export const flagFor = (key: string): string => `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`
