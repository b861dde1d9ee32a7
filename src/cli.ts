#!/usr/bin/env node
import { fileURLToPath } from 'node:url'
import { Command, Option } from 'commander'
// tokens.ts on its own, not api/index.ts: the scopes must not load the API server into every command.
import { SCOPES, type Scope } from './api/tokens.ts'
import { allTopics } from './catalog/index.ts'
import { type Config, configToEnv, flagFor, loadConfig, type SettingKey, settings } from './config/index.ts'
import { classify, errorCodes, PipelineError } from './errors/index.ts'
import { createLogger, type Logger } from './shared/log.ts'
import { watchParent } from './shared/process.ts'
import { heapFlags, SEMI_SPACE_MB } from './shared/supervisor.ts'
// The composition root imports these two light modules directly; every stage is loaded lazily
// by the command that needs it (the Kafka client alone takes a second to load).
import { withEndpoints } from './stack/endpoints.ts'
import { formatLine } from './stack/supervisor.ts'

// The Kafka client (zstd from node:zlib) and the project need Node 24.6+. npm's scripts run on the
// pinned Node 26 (node_modules/.bin/node); `node dist/cli.js` with an older Node stops here.
const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number)
if (nodeMajor < 24 || (nodeMajor === 24 && nodeMinor < 6)) {
  process.stderr.write(
    `evf: PREREQUISITE_MISSING: Node.js 24.6+ is required (this is ${process.version}): run it as \`npm run evf -- …\` or with node_modules/.bin/node, the Node.js 26 \`npm ci\` installs\n`,
  )
  process.exit(errorCodes.PREREQUISITE_MISSING.exitCode)
}

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
const MAINTAIN: SettingKey[] = [...DB, 'retentionDays']
const ETL: SettingKey[] = [...KAFKA, 'databaseUrl', ...ALL.filter((k) => k.startsWith('etl'))]
const SIM: SettingKey[] = [...KAFKA, ...ALL.filter((k) => k.startsWith('sim'))]
const API: SettingKey[] = [
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
]

/**
 * Adds a `--flag <value>` for each setting; the environment variable and default are in the help.
 * A yes/no setting's value is optional: `--postgres-replica` alone means true.
 */
function withSettings(cmd: Command, keys: SettingKey[]): Command {
  for (const key of keys) {
    const def = settings[key]
    const yesNo = def.schema.safeParse('yes').data === true
    cmd.addOption(
      new Option(`${flagFor(key)} ${yesNo ? '[value]' : '<value>'}`, `${def.doc} [env ${def.env}]`),
    )
  }
  return cmd
}

/** Turns the command's flags into the validated config; a bad value ends the process with exit 2. */
function configOf(
  cmd: Command,
  needs: ('kafka' | 'database')[] = [],
  kafkaUser?: 'etl' | 'simulator',
): Config {
  return withEndpoints(loadConfig(cmd.opts()), needs, kafkaUser)
}

/** Runs until SIGINT/SIGTERM, then aborts the signal so the work drains. */
function untilSignal(): AbortSignal {
  const controller = new AbortController()
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => controller.abort())
  if (process.env.EVF_SUPERVISED) watchParent(controller)
  return controller.signal
}

/** Node flags of ETL worker processes: this process's, with the heap limits set once. */
const workerExecArgv = (heapMb: number): string[] => [
  ...process.execArgv.filter(
    (a) => !a.startsWith('--max-old-space-size') && !a.startsWith('--max-semi-space-size'),
  ),
  ...heapFlags(heapMb, SEMI_SPACE_MB),
]

const dbLost = (log: Logger) => (error: Error) =>
  log.warn({ err: error.message }, 'lost a database connection')

const program = new Command('evf')
  .description('EV factory sensor pipeline: simulator → Kafka → ETL → PostgreSQL → API')
  .showHelpAfterError()

const stack = program.command('stack').description('the whole pipeline')
withSettings(
  stack.command('up').description('start Kafka, PostgreSQL, the ETL, the API and the simulator'),
  ALL,
).action(async (_o, cmd: Command) => {
  const config = configOf(cmd)
  // The stack's own lines are shown like its children's: compact, for a person at a terminal.
  const pretty = { write: (line: string) => process.stdout.write(`${formatLine('stack', line.trimEnd())}\n`) }
  const { stackUp } = await import('./stack/index.ts')
  process.exitCode = await stackUp(config, createLogger('stack', config.logLevel, pretty))
})

withSettings(program.command('simulate').description('produce sensor readings to Kafka'), SIM).action(
  async (_o, cmd: Command) => {
    const config = configOf(cmd, ['kafka'], 'simulator')
    const { runSimulator } = await import('./simulator/index.ts')
    const summary = await runSimulator(config, createLogger('simulator', config.logLevel), untilSignal())
    if (config.simCount > 0) process.stdout.write(`${JSON.stringify(summary)}\n`)
  },
)

const etl = program.command('etl').description('Kafka → PostgreSQL, exactly once')
withSettings(
  etl
    .command('run')
    .description('load everything in the topics at start, then exit with a JSON summary on stdout')
    .option('--topic <topic...>', 'only these topics (default: every station topic)'),
  ETL,
).action(async (o: { topic?: string[] }, cmd: Command) => {
  const config = configOf(cmd, ['kafka', 'database'], 'etl')
  const log = createLogger('etl', config.logLevel)
  const [{ createPool }, { runBounded, runBoundedProcesses }] = await Promise.all([
    import('./db/index.ts'),
    import('./etl/index.ts'),
  ])
  if (config.etlWorkers > 1) {
    const argv = {
      node: process.execPath,
      execArgv: workerExecArgv(config.etlHeapMb),
      cli: fileURLToPath(import.meta.url),
      env: configToEnv(config),
    }
    const run = await runBoundedProcesses(o.topic ?? allTopics(config.topicPrefix), config.etlWorkers, argv)
    process.stdout.write(`${JSON.stringify(run.summary)}\n`)
    process.exitCode = run.exitCode
    return
  }
  const pool = createPool(config.databaseUrl, { application: 'evf-etl', onError: dbLost(log) })
  try {
    const summary = await runBounded(
      config,
      pool,
      log,
      o.topic ?? allTopics(config.topicPrefix),
      untilSignal(),
    )
    process.stdout.write(`${JSON.stringify(summary)}\n`)
    // Stopped by a signal before its end: the summary says how far it got; schedulers see a failure.
    if (summary.status === 'aborted') process.exitCode = errorCodes.ABORTED.exitCode
  } catch (error) {
    throw classify(error)
  } finally {
    await pool.end()
  }
})
for (const [name, description] of [
  ['follow', 'load continuously until stopped'],
  ['schedule', 'run bounded loads on the cron schedule until stopped'],
] as const) {
  withSettings(etl.command(name).description(description), ETL).action(async (_o, cmd: Command) => {
    const config = configOf(cmd, ['kafka', 'database'], 'etl')
    const log = createLogger('etl', config.logLevel)
    const [{ createPool }, etl] = await Promise.all([import('./db/index.ts'), import('./etl/index.ts')])
    // `etl follow` supervises its worker processes (and watches them for a stall); a worker
    // process (EVF_ETL_WORKER) loads.
    if (name === 'follow' && !process.env.EVF_ETL_WORKER) {
      const argv = {
        node: process.execPath,
        execArgv: workerExecArgv(config.etlHeapMb),
        cli: fileURLToPath(import.meta.url),
        env: configToEnv(config),
      }
      const pool = createPool(config.databaseUrl, {
        application: 'evf-etl-supervisor',
        max: 2,
        onError: dbLost(log),
      })
      try {
        return await etl.runWorkerProcesses(config, pool, argv, log, untilSignal())
      } finally {
        await pool.end()
      }
    }
    // `etl schedule` is the built-in orchestrator's cron (orchestrator/builtin.ts).
    const fn = name === 'follow' ? etl.follow : (await import('./orchestrator/index.ts')).scheduleEtl
    const pool = createPool(config.databaseUrl, { application: `evf-etl-${name}`, onError: dbLost(log) })
    try {
      await fn(config, pool, log, untilSignal())
    } finally {
      await pool.end()
    }
  })
}

withSettings(
  etl
    .command('skip')
    .description(
      "move a partition held back at a record batch that cannot be decoded past that batch; the batch's raw bytes become a dead letter",
    )
    .requiredOption('--topic <topic>', 'the held-back partition’s topic')
    .requiredOption('--partition <n>', 'its partition number', (v) => Number(v)),
  DB,
).action(async (o: { topic: string; partition: number }, cmd: Command) => {
  if (!Number.isInteger(o.partition) || o.partition < 0)
    throw new PipelineError('CONFIG_INVALID', '--partition must be a partition number (0, 1, …)')
  const config = configOf(cmd, ['database'])
  const { blockedPartitions, createPool, inTransaction, skipBlocked } = await import('./db/index.ts')
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    const skipped = await inTransaction(pool, (client) => skipBlocked(client, o.topic, o.partition))
    if (!skipped) {
      const held = (await blockedPartitions(pool)).map((b) => `${b.topic}[${b.partition}]`)
      throw new PipelineError(
        'CONFIG_INVALID',
        `${o.topic}[${o.partition}] is not held back at an undecodable batch (held back: ${held.join(', ') || 'none'})`,
      )
    }
    process.stdout.write(`${JSON.stringify(skipped)}\n`)
  } finally {
    await pool.end()
  }
})

const deadLetters = etl
  .command('dead-letters')
  .description('messages the ETL could not load, kept with their raw bytes')
const filterOptions = (cmd: Command) =>
  cmd
    .option('--id <id...>', 'only these dead letters')
    .option('--reason <code>', 'only this reason code (e.g. WRONG_TYPE)')
    .option('--topic <topic>', 'only this topic')
    .option('--limit <n>', 'at most this many', (v) => Number(v))
interface FilterFlags {
  id?: string[]
  reason?: string
  topic?: string
  limit?: number
  all?: boolean
  json?: boolean
}
const filterOf = (o: FilterFlags) => ({
  ids: o.id?.map(Number),
  reason: o.reason,
  topic: o.topic,
  limit: o.limit,
  includeResolved: o.all,
})
withSettings(
  filterOptions(deadLetters.command('list').description('list dead letters, newest first'))
    .option('--all', 'include the ones already re-driven')
    .option('--json', 'one JSON object per line'),
  DB,
).action(async (o: FilterFlags, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const { createPool, listDeadLetters } = await import('./db/index.ts')
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    const rows = await listDeadLetters(pool, filterOf(o))
    for (const r of rows) {
      process.stdout.write(
        o.json
          ? `${JSON.stringify(r)}\n`
          : `#${r.id}  ${r.topic}[${r.partition}]@${r.offset}  ${r.reason_code}  ${r.reason}\n    ${r.value_bytes} B: ${r.value_preview}\n`,
      )
    }
    if (!o.json) process.stderr.write(`${rows.length} dead letter(s)\n`)
  } finally {
    await pool.end()
  }
})
withSettings(
  filterOptions(
    deadLetters
      .command('retry')
      .description("validate chosen dead letters again with today's rules and load the ones that pass"),
  ),
  ETL,
).action(async (o: FilterFlags, cmd: Command) => {
  if (!o.id && !o.reason && !o.topic)
    throw new PipelineError('CONFIG_INVALID', 'choose what to retry: --id, --reason or --topic')
  const config = configOf(cmd, ['database'])
  const [{ createPool }, { retryDeadLetters }] = await Promise.all([
    import('./db/index.ts'),
    import('./etl/index.ts'),
  ])
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    process.stdout.write(`${JSON.stringify(await retryDeadLetters(config, pool, filterOf(o)))}\n`)
  } finally {
    await pool.end()
  }
})

withSettings(program.command('api').description('serve the HTTP API and its docs'), API).action(
  async (_o, cmd: Command) => {
    const config = configOf(cmd, ['database'])
    const log = createLogger('api', config.logLevel)
    const [{ createPool }, { buildApp }] = await Promise.all([
      import('./db/index.ts'),
      import('./api/index.ts'),
    ])
    const pool = createPool(config.databaseUrl, {
      max: 10,
      application: 'evf-api',
      statementTimeoutMs: config.apiStatementTimeoutMs,
      onError: dbLost(log),
    })
    const { readTlsPair } = await import('./api/tls.ts')
    const tls = config.apiTlsCert ? await readTlsPair(config.apiTlsCert, config.apiTlsKey) : undefined
    // A hot standby for reads (DATABASE_READ_URL): its own pool, same limits.
    const readPool = config.databaseReadUrl
      ? createPool(config.databaseReadUrl, {
          max: 10,
          application: 'evf-api-reads',
          statementTimeoutMs: config.apiStatementTimeoutMs,
          onError: dbLost(log),
        })
      : undefined
    const app = await buildApp({ pool, readPool, logger: log, config, auth: config.apiAuth, tls })
    await app.listen({ host: config.apiHost, port: config.apiPort }).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
      const message = `port ${config.apiPort} is already in use: stop what listens there, or set ${settings.apiPort.env}`
      throw new PipelineError('SERVICE_START_FAILED', message, { cause: error })
    })
    await new Promise((resolve) => untilSignal().addEventListener('abort', resolve))
    await app.close()
    await readPool?.end()
    await pool.end()
  },
)

const tokens = program.command('tokens').description('API tokens: who may call the API (docs/security.md)')
withSettings(
  tokens
    .command('create')
    .description('make a token and print it, once (only its hash is kept)')
    .requiredOption('--name <name>', 'what the token is for, unique among active tokens')
    .addOption(new Option('--scope <scope...>', 'what it may do').choices(SCOPES).makeOptionMandatory())
    .option('--json', 'print {"token", "id", "name", "scopes"} as JSON'),
  DB,
).action(async (o: { name: string; scope: Scope[]; json?: boolean }, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const [{ createPool }, { issueToken }] = await Promise.all([
    import('./db/index.ts'),
    import('./api/tokens.ts'),
  ])
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    const scopes = [...new Set(o.scope)]
    const { id, token } = await issueToken(pool, 'api', o.name, scopes)
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ token, id, name: o.name, scopes })}\n`
        : `${token}\n\nThe token is shown once: keep it in a secret store. Send it as \`Authorization: Bearer <token>\`.\n`,
    )
  } finally {
    await pool.end()
  }
})
withSettings(
  tokens
    .command('list')
    .description('named tokens: id, name, scopes, created, last used, revoked (never secrets)')
    .option('--json', 'as JSON'),
  DB,
).action(async (o: { json?: boolean }, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const { createPool, listTokens } = await import('./db/index.ts')
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    const list = await listTokens(pool)
    if (o.json) process.stdout.write(`${JSON.stringify(list)}\n`)
    else
      for (const t of list)
        process.stdout.write(
          `${t.id}  ${t.name}  ${t.scopes.join(',')}  created ${t.created_at.toISOString()}  last used ${t.last_used_at?.toISOString() ?? 'never'}${t.revoked_at ? `  REVOKED ${t.revoked_at.toISOString()}` : ''}\n`,
        )
  } finally {
    await pool.end()
  }
})
withSettings(
  tokens.command('revoke').description('revoke the active token of this name or id').argument('<name-or-id>'),
  DB,
).action(async (nameOrId: string, _o, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const { createPool, revokeToken } = await import('./db/index.ts')
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    if (!(await revokeToken(pool, nameOrId)))
      throw new PipelineError('CONFIG_INVALID', `no active token named or with id "${nameOrId}"`)
    process.stdout.write(`revoked ${nameOrId}\n`)
  } finally {
    await pool.end()
  }
})

withSettings(
  program
    .command('login-url')
    .description('print a new one-time dashboard login URL (earlier unused ones stop working)'),
  [...DB, 'apiHost', 'apiPort', 'apiTlsCert'],
).action(async (_o, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const [{ createPool }, { newLoginUrl }, { apiBase }] = await Promise.all([
    import('./db/index.ts'),
    import('./api/tokens.ts'),
    import('./shared/http.ts'),
  ])
  const pool = createPool(config.databaseUrl, { max: 1 })
  try {
    process.stdout.write(`${await newLoginUrl(pool, apiBase(config))}\n`)
  } finally {
    await pool.end()
  }
})

const tls = program
  .command('tls')
  .description('certificates for the API’s HTTPS and the embedded Kafka’s TLS')
withSettings(
  tls
    .command('self-signed')
    .description('write a self-signed certificate and key for development (key file 0600)')
    .option('--cert <file>', 'certificate file', '<data-dir>/tls/api.crt')
    .option('--key <file>', 'key file', '<data-dir>/tls/api.key')
    .option(
      '--host <name...>',
      'more host names or addresses it is valid for, besides localhost and 127.0.0.1',
      [],
    ),
  ['dataDir'],
).action(async (o: { cert: string; key: string; host: string[] }, cmd: Command) => {
  const { dataDir } = configOf(cmd)
  const { writeSelfSigned } = await import('./api/tls.ts')
  const at = (f: string) => f.replace('<data-dir>', dataDir)
  await writeSelfSigned(at(o.cert), at(o.key), o.host)
  process.stdout.write(`EVF_API_TLS_CERT=${at(o.cert)}\nEVF_API_TLS_KEY=${at(o.key)}\n`)
})
withSettings(
  tls
    .command('kafka-keystore')
    .description(
      'write a development PKCS12 keystore (0600) for the embedded Kafka broker, signed by a CA made for it, and that CA’s PEM; the password is EVF_KAFKA_KEYSTORE_PASSWORD from the environment, or one generated and printed once',
    )
    .option('--keystore <file>', 'keystore file', '<data-dir>/tls/kafka.p12')
    .option(
      '--host <name...>',
      'more host names or addresses it is valid for, besides localhost and 127.0.0.1',
      [],
    ),
  ['dataDir'],
).action(async (o: { keystore: string; host: string[] }, cmd: Command) => {
  const { dataDir, kafkaKeystorePassword } = configOf(cmd)
  const [{ makeDevKeystore }, { randomBytes }] = await Promise.all([
    import('./services/index.ts'),
    import('node:crypto'),
  ])
  const password = kafkaKeystorePassword || randomBytes(24).toString('base64url')
  const made = await makeDevKeystore(o.keystore.replace('<data-dir>', dataDir), password, o.host)
  process.stdout.write(
    `EVF_KAFKA_KEYSTORE=${made.keystore}\n${kafkaKeystorePassword ? '' : `EVF_KAFKA_KEYSTORE_PASSWORD=${password}\n`}`,
  )
  process.stderr.write(
    `${kafkaKeystorePassword ? '' : 'The password is shown once: keep it in a secret store.\n'}The CA other clients trust (KAFKA_CA_FILE): ${made.caFile}; \`stack up\` hands it to its components itself.\n`,
  )
})

const db = program.command('db').description('the database')
withSettings(db.command('migrate').description('apply the SQL migrations not yet applied'), DB).action(
  async (_o, cmd: Command) => {
    const config = configOf(cmd, ['database'])
    const { createPool, migrate } = await import('./db/index.ts')
    const pool = createPool(config.databaseUrl, { max: 1 })
    try {
      const applied = await migrate(pool)
      process.stdout.write(`${JSON.stringify({ applied })}\n`)
    } finally {
      await pool.end()
    }
  },
)

withSettings(
  db
    .command('maintain')
    .description("create the coming days' partitions, apply the retention, refresh statistics"),
  MAINTAIN,
).action(async (_o, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const { createPool, maintain } = await import('./db/index.ts')
  const pool = createPool(config.databaseUrl, { max: 1, statementTimeoutMs: 0 })
  try {
    process.stdout.write(`${JSON.stringify(await maintain(pool, config.retentionDays))}\n`)
  } finally {
    await pool.end()
  }
})

withSettings(
  db
    .command('roles')
    .description(
      'give the evf_etl, evf_api and evf_bi roles a login (passwords kept in <data-dir>/db-roles.json) and print their URLs',
    ),
  [...DB, 'dataDir'],
).action(async (_o, cmd: Command) => {
  const config = configOf(cmd, ['database'])
  const { provisionRoleLogins } = await import('./services/index.ts')
  process.stdout.write(
    `${JSON.stringify(await provisionRoleLogins(config.databaseUrl, config.dataDir), null, 2)}\n`,
  )
})

withSettings(
  program.command('config').description('print the effective settings as JSON (passwords masked)'),
  ALL,
).action(async (_o, cmd: Command) => {
  const { maskSecrets } = await import('./shared/redact.ts')
  process.stdout.write(`${JSON.stringify(maskSecrets(configOf(cmd)), null, 2)}\n`)
})

// Catalog facts for programs that are not TypeScript (the Airflow DAG asks at parse time).
withSettings(
  program
    .command('catalog')
    .description('print the stations, their measurements and their topics')
    .option('--json', 'one JSON object: {topicPrefix, topics, stations: [{name, title, topic, fields}]}'),
  ['topicPrefix'],
).action(async (o: { json?: boolean }, cmd: Command) => {
  const { topicPrefix } = configOf(cmd)
  const { stations, stationNames, topicFor } = await import('./catalog/index.ts')
  const list = stationNames.map((name) => ({
    name,
    title: stations[name].title,
    topic: topicFor(name, topicPrefix),
    // The simulator's model is not a fact about the plant.
    fields: Object.fromEntries(
      Object.entries(stations[name].fields).map(([field, { sim: _sim, ...fact }]) => [field, fact]),
    ),
  }))
  if (o.json) {
    const topics = list.map((s) => s.topic)
    process.stdout.write(`${JSON.stringify({ topicPrefix, topics, stations: list })}\n`)
    return
  }
  for (const s of list) {
    const fields = Object.entries(s.fields).map(([f, { unit }]) => (unit ? `${f} (${unit})` : f))
    process.stdout.write(
      `${s.name.padEnd(9)} ${s.topic.padEnd(topicPrefix.length + 9)} ${fields.join(', ')}\n`,
    )
  }
})

program.parseAsync().catch((error: unknown) => {
  const e = error instanceof PipelineError ? error : classify(error)
  process.stderr.write(`evf: ${e.code}: ${e.message}\n`)
  process.exit(e.exitCode)
})
