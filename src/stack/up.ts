// tokens.ts on its own, not api/index.ts: minting a login must not load the API server into `stack up`.
import { newLoginUrl } from '../api/tokens.ts'
import { catalogFromFile } from '../catalog/index.ts'
import { type Config, checkSimFaults, configToEnv } from '../config/index.ts'
import { createPool, ingestSources, type Pool, recordIngestSources } from '../db/index.ts'
import { kafkaEnv } from '../kafka/index.ts'
import { airflow, builtin, type Orchestrator, startMaintenance } from '../orchestrator/index.ts'
import { provisionRoleLogins } from '../services/index.ts'
import { apiBase, waitForHttp } from '../shared/http.ts'
import type { Logger } from '../shared/log.ts'
import { maskPasswords } from '../shared/redact.ts'
import {
  component,
  evfCommand,
  heapFlags,
  restartWithBackoff,
  SEMI_SPACE_MB,
  type Supervisor,
} from '../shared/supervisor.ts'
import { sleep } from '../shared/time.ts'
import { type DeviceEndpoints, deviceEnv, deviceNeeds, startDeviceEndpoints } from './devices.ts'
import { removeEndpoints, writeEndpoints } from './endpoints.ts'
import { checkPorts } from './ports.ts'
import { logsDir, type Services, startServices } from './services.ts'
import { orderedShutdown } from './shutdown.ts'
import { stackSupervisor } from './supervisor.ts'

type RoleUrls = Awaited<ReturnType<typeof provisionRoleLogins>>

/**
 * `stack up`: services first (PostgreSQL, Kafka), then the Node components as supervised
 * children: the ETL (or Airflow: the orchestrator `orchestrator` picks), API, simulator. Ctrl-C
 * or SIGTERM stops them in reverse order — the simulator flushes its producer, the ETL commits
 * or rolls back its open batch — and then the services. A component that dies stops the whole
 * stack, loudly: nothing is restarted behind your back.
 */
export async function stackUp(config: Config, log: Logger): Promise<number> {
  const t0 = performance.now()
  // A bad catalog stops the start before anything runs, listing every problem (exit 2); so does a
  // simFault naming what it lacks (the catalog applied at start is this file's).
  const catalog = catalogFromFile(config.catalog)
  if (config.simulator) checkSimFaults(config.simFault, catalog, config.simStations)
  // A port that is taken stops the start here, before anything runs, naming its setting.
  await checkPorts(config, log)
  const services = await startServices(config, log)
  // Before anything can fail: whatever starts from here is stopped by the shutdown below.
  let devices: DeviceEndpoints | undefined
  writeEndpoints(config, {
    kafkaBrokers: services.kafkaBrokers,
    kafkaCaFile: services.kafka.admin.kafkaCaFile,
    databaseUrl: services.databaseUrl,
  })
  const roles = await roleUrls(services.databaseUrl, config.dataDir, log)
  const maintenance = await startMaintenance(services.databaseUrl, config.retentionDays, log)
  const shutdown = orderedShutdown(log, async () => {
    const maintained = maintenance.stop()
    try {
      await supervisor.stopAll()
      await maintained
      await devices?.stop()
      await services.stop()
    } finally {
      removeEndpoints(config)
    }
  })
  const supervisor = stackSupervisor(logsDir(config), log, (name, code) => {
    void shutdown.fail({ component: name, exitCode: code || 1 }, `${name} exited`)
  })
  process.once('SIGINT', () => void shutdown.stop('SIGINT'))
  process.once('SIGTERM', () => void shutdown.stop('SIGTERM'))

  try {
    devices = await startDeviceEndpoints(config, deviceNeeds(config, catalog), log)
    const started = await startComponents(config, services, roles, devices, supervisor, log)
    const base = apiBase(config)
    // A component that dies meanwhile stops the stack: no wait, and no banner for a stack going down.
    await Promise.race([
      waitForHttp(`${base}/health`, 30_000, config.apiTlsCert || undefined),
      shutdown.requested,
    ])
    if (!shutdown.stopping()) {
      const startupMs = Math.round(performance.now() - t0)
      const dashboard =
        config.apiAuth === 'on' ? await dashboardLogin(services.databaseUrl, base) : `${base}/`
      printBanner(config, services, roles, devices, base, dashboard, started, startupMs)
      log.info({ startupMs, timings: services.timings }, 'stack up')
    }
  } catch (error) {
    // What did start stops, services included, before the error is reported.
    await shutdown.fail({ error }, 'start-up failed')
  }
  // The first failure is the stack's: what failed after it, while stopping, is only logged.
  const code = await shutdown.outcome()
  log.info('stack stopped')
  return code
}

/**
 * Least privilege: the ETL loads as evf_etl, the API reads as evf_api, the simulator reads the
 * catalog as evf_sim; the stack itself (and
 * Airflow, whose DAG runs maintenance) keeps the owner's URL.
 */
function roleUrls(databaseUrl: string, dataDir: string, log: Logger): Promise<RoleUrls> {
  return provisionRoleLogins(databaseUrl, dataDir).catch((error: unknown) => {
    log.warn(
      { err: String(error) },
      'cannot give the evf_* roles a login (the DATABASE_URL role lacks CREATEROLE?): every component uses DATABASE_URL',
    )
    return {
      evf_etl: databaseUrl,
      evf_api: databaseUrl,
      evf_bi: databaseUrl,
      evf_sim: databaseUrl,
      evf_ingest: databaseUrl,
    }
  })
}

/**
 * The components, in start order: what runs the ETL (the orchestrator `orchestrator` picks),
 * the API, the simulator. Resolves with what the orchestrator says for the banner.
 */
async function startComponents(
  config: Config,
  services: Services,
  roles: RoleUrls,
  devices: DeviceEndpoints,
  supervisor: Supervisor,
  log: Logger,
): Promise<{ etl: string; lines: string[] }> {
  // Each component gets its own Kafka login below; the API, which never talks to Kafka, none.
  const noLogin = { kafkaSaslMechanism: 'none', kafkaUsername: '', kafkaPassword: '' } as const
  const env = {
    ...configToEnv(config),
    ...kafkaEnv({ ...services.kafka.admin, ...noLogin }),
    DATABASE_URL: services.databaseUrl,
  }
  const orchestrator: Orchestrator = config.orchestrator === 'airflow' ? airflow : builtin
  const started = await orchestrator.start({
    config,
    kafkaBrokers: services.kafkaBrokers,
    databaseUrl: services.databaseUrl,
    etlDatabaseUrl: roles.evf_etl,
    etlKafka: services.kafka.etl,
    env: { ...env, ...kafkaEnv(services.kafka.etl) },
    supervisor,
    logsDir: logsDir(config),
    log,
  })
  const api = evfCommand(['api'], heapFlags(config.apiHeapMb, SEMI_SPACE_MB))
  await supervisor.start(
    component('api', api, {
      ...env,
      DATABASE_URL: roles.evf_api,
      DATABASE_READ_URL: services.databaseReadUrl ? sameRoleOn(roles.evf_api, services.databaseReadUrl) : '',
    }),
  )
  await startPlant(config, services, roles, devices, supervisor, env)
  return started
}

/**
 * The plant's side: `evf ingest` when a station reads devices (restarted with backoff if it
 * dies: its devices' broker keeps what it did not acknowledge), and the simulator. Ingest
 * first when the simulator publishes to a broker (a persistent session keeps only what arrives
 * after its first subscription), the simulator first when it serves OPC UA itself.
 */
async function startPlant(
  config: Config,
  services: Services,
  roles: RoleUrls,
  devices: DeviceEndpoints,
  supervisor: Supervisor,
  env: Record<string, string>,
): Promise<void> {
  const ingest =
    devices.needs.mqtt || devices.needs.opcua
      ? component(
          'ingest',
          evfCommand(['ingest']),
          {
            ...env,
            ...kafkaEnv(services.kafka.ingest),
            ...deviceEnv(devices, 'ingest'),
            DATABASE_URL: roles.evf_ingest,
          },
          { restart: restartWithBackoff() },
        )
      : undefined
  // No ingest: what an earlier one recorded must not keep /ready degraded.
  if (!ingest) await withOwnerPool(services.databaseUrl, (pool) => recordIngestSources(pool, []))
  const servesOpcua = config.simTransport === 'opcua'
  if (ingest && !servesOpcua) {
    await supervisor.start(ingest)
    await untilSourcesConnected(services.databaseUrl, 15_000)
  }
  if (config.simulator) {
    // It simulates the catalog in force, following it live (it reads the catalog, nothing else).
    const simulator = {
      ...env,
      ...kafkaEnv(services.kafka.simulator),
      ...deviceEnv(devices, 'device'),
      DATABASE_URL: roles.evf_sim,
      EVF_SIM_CATALOG_FROM: 'database',
    }
    await supervisor.start(component('simulator', evfCommand(['simulate']), simulator))
  }
  if (ingest && servesOpcua) await supervisor.start(ingest)
}

/** Waits (at most `ms`) until ingest's sources say they are connected: its subscriptions exist. */
function untilSourcesConnected(databaseUrl: string, ms: number): Promise<void> {
  return withOwnerPool(databaseUrl, async (pool) => {
    const until = Date.now() + ms
    while (Date.now() < until) {
      const sources = await ingestSources(pool)
      if (sources.length > 0 && sources.every((s) => s.connected && s.heartbeatAgeSeconds < 10)) return
      await sleep(250)
    }
  })
}

async function withOwnerPool<T>(databaseUrl: string, fn: (pool: Pool) => Promise<T>): Promise<T> {
  const pool = createPool(databaseUrl, { max: 1 })
  try {
    return await fn(pool)
  } finally {
    await pool.end()
  }
}

/** The Jupyter way: the banner's dashboard link logs its opener in once (docs/security.md). */
async function dashboardLogin(databaseUrl: string, base: string): Promise<string> {
  const pool = createPool(databaseUrl, { max: 1 })
  try {
    return `${await newLoginUrl(pool, base)}  (one-time login link; \`evf login-url\` makes another)`
  } finally {
    await pool.end()
  }
}

/** `roleUrl`'s role and password, on the server of `serverUrl` (the standby has the primary's roles). */
function sameRoleOn(roleUrl: string, serverUrl: string): string {
  const url = new URL(roleUrl)
  url.port = new URL(serverUrl).port
  return url.toString()
}

/** How the embedded broker is secured, for the banner. */
const kafkaSecurity = (config: Config, services: Services): string =>
  config.kafkaKeystore ? `SASL_SSL/SCRAM, CA ${services.kafka.admin.kafkaCaFile}` : 'SASL/SCRAM'

function printBanner(
  config: Config,
  services: Services,
  roles: RoleUrls,
  devices: DeviceEndpoints | undefined,
  base: string,
  dashboard: string,
  orchestrator: { etl: string; lines: string[] },
  startupMs: number,
): void {
  const timings = Object.entries(services.timings)
    .map(([k, v]) => `${k} ${v} ms`)
    .join(', ')
  const lines = [
    '',
    '  EV factory pipeline is up',
    `  Dashboard    ${dashboard}`,
    `  API          ${base}/sensor-data`,
    `  API docs     ${base}/docs`,
    `  Kafka        ${services.kafkaBrokers}${config.kafkaBrokers ? '' : ` (embedded; ${kafkaSecurity(config, services)}, users in ${config.dataDir}/secrets/kafka.json)`}`,
    `  PostgreSQL   ${maskPasswords(services.databaseUrl)}${config.databaseUrl ? '' : ' (embedded)'}`,
    ...(services.databaseReadUrl
      ? [
          `  Standby      ${maskPasswords(services.databaseReadUrl)} (hot standby, streaming; the API reads from it)`,
        ]
      : []),
    `  ETL          ${orchestrator.etl}`,
    ...deviceLines(config, devices),
    `  BI (Tableau) ${maskPasswords(roles.evf_bi)}  (password in ${config.dataDir}/db-roles.json; views in schema bi, docs/tableau.md)`,
    ...orchestrator.lines,
    `  Data, logs   ${config.dataDir}`,
    `  Started in   ${startupMs} ms (${timings})`,
    '  Ctrl-C stops everything.',
    '',
  ]
  process.stdout.write(`${lines.join('\n')}\n`)
}

/** The banner's lines for the devices: their broker and server, and who plays them. */
function deviceLines(config: Config, devices: DeviceEndpoints | undefined): string[] {
  if (!devices || !(devices.needs.mqtt || devices.needs.opcua)) return []
  const played =
    config.simulator && config.simTransport !== 'kafka'
      ? ` (the simulator plays the devices: ${config.simTransport})`
      : ''
  return [
    ...(devices.needs.mqtt
      ? [
          `  MQTT         ${devices.mqttUrl}${devices.mqtt ? ` (embedded Mosquitto; users in ${config.dataDir}/secrets/mqtt.json)` : ''}${played}`,
        ]
      : []),
    ...(devices.needs.opcua ? [`  OPC UA       ${devices.opcuaUrl}${config.opcuaUrl ? '' : played}`] : []),
    '  Ingest       evf ingest: devices → Kafka, acknowledged after Kafka (docs/devices.md)',
  ]
}
