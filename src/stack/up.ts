import { Cron } from 'croner'
import { type Config, configToEnv } from '../config/index.ts'
import { createPool, maintain, provisionRoleLogins } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { sleep } from '../shared/time.ts'
import { removeEndpoints, writeEndpoints } from './endpoints.ts'
import { logsDir, type Services, startServices } from './services.ts'
import { Supervisor } from './supervisor.ts'

/** Installs Airflow if needed, migrates its metadata, starts its processes; returns banner lines. */
async function startAirflow(
  config: Config,
  services: Services,
  supervisor: Supervisor,
  log: Logger,
): Promise<string[]> {
  const airflow = await import('../orchestrator/index.ts')
  log.info('Airflow: installing or checking the venv…')
  await airflow.installAirflow()
  const home = airflow.airflowHome(config)
  await airflow.ensureMetadataDatabase(services.databaseUrl, 'airflow')
  const env = airflow.airflowEnv({
    home,
    kafkaBrokers: services.kafkaBrokers,
    databaseUrl: services.databaseUrl,
    airflowDb: 'airflow',
    port: config.airflowPort,
    schedule: config.etlSchedule,
    topicPrefix: config.topicPrefix,
    retentionDays: config.retentionDays,
  })
  const { user, password } = await airflow.uiCredentials(home)
  log.info('Airflow: migrating its metadata database…')
  await airflow.migrateMetadata(env)
  for (const name of airflow.AIRFLOW_PROCESSES) {
    await supervisor.startProcess(`airflow-${name}`, airflow.airflowBin, [name], env, { show: false })
  }
  const ui = `http://127.0.0.1:${config.airflowPort}`
  await waitForHttp(`${ui}/api/v2/monitor/health`, 120_000)
  return [`  Airflow UI   ${ui}  (user ${user}, password ${password}; logs in ${logsDir(config)})`]
}

async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
}

/**
 * `stack up`: services first (PostgreSQL, Kafka), then the Node components as supervised
 * children: ETL, API, simulator. Ctrl-C or SIGTERM stops them in reverse order — the simulator
 * flushes its producer, the ETL commits or rolls back its open batch — and then the services.
 * A component that dies stops the whole stack, loudly: nothing is restarted behind your back.
 */
export async function stackUp(config: Config, log: Logger): Promise<number> {
  const t0 = performance.now()
  const services = await startServices(config, log)
  const env = {
    ...configToEnv(config),
    KAFKA_BROKERS: services.kafkaBrokers,
    DATABASE_URL: services.databaseUrl,
  }
  writeEndpoints(config, { kafkaBrokers: services.kafkaBrokers, databaseUrl: services.databaseUrl })
  // Least privilege: the ETL loads as evf_etl, the API reads as evf_api; the stack itself (and
  // Airflow, whose DAG runs maintenance) keeps the owner's URL.
  const roles = await provisionRoleLogins(services.databaseUrl, config.dataDir).catch((error: unknown) => {
    log.warn(
      { err: String(error) },
      'cannot give the evf_* roles a login (the DATABASE_URL role lacks CREATEROLE?): every component uses DATABASE_URL',
    )
    const url = services.databaseUrl
    return { evf_etl: url, evf_api: url, evf_bi: url }
  })
  // Maintenance (partitions ahead, retention, statistics) at start and every hour.
  const maintenancePool = createPool(services.databaseUrl, {
    max: 1,
    statementTimeoutMs: 0,
    application: 'evf-maintain',
  })
  const runMaintenance = async () => {
    try {
      log.info({ maintenance: await maintain(maintenancePool, config.retentionDays) }, 'storage maintained')
    } catch (error) {
      log.error({ err: String(error) }, 'storage maintenance failed; retried at the next hour')
    }
  }
  await runMaintenance()
  const maintenance = new Cron('7 * * * *', { protect: true }, runMaintenance)
  let exitCode = 0
  let shutdown: Promise<void> | undefined
  const stop = (reason: string) => {
    if (!shutdown) {
      log.info({ reason }, 'stopping the stack')
      maintenance.stop()
      shutdown = supervisor
        .stopAll()
        .then(() => maintenancePool.end())
        .then(() => services.stop())
        .finally(() => removeEndpoints(config))
    }
    return shutdown
  }
  const supervisor = new Supervisor(logsDir(config), (name, code, tail) => {
    log.error({ component: name, exitCode: code, lastLines: tail.slice(-5) }, `${name} exited unexpectedly`)
    exitCode = 1
    void stop(`${name} exited`)
  })
  process.once('SIGINT', () => void stop('SIGINT'))
  process.once('SIGTERM', () => void stop('SIGTERM'))

  let airflowLines: string[] = []
  if (config.orchestrator === 'airflow') {
    // Airflow runs the ETL (the DAG's bounded runs); the built-in runner stays off.
    airflowLines = await startAirflow(config, services, supervisor, log)
  } else if (config.etlMode !== 'off')
    await supervisor.start(
      'etl',
      ['etl', config.etlMode === 'schedule' ? 'schedule' : 'follow'],
      { ...env, DATABASE_URL: roles.evf_etl },
      [`--max-old-space-size=${config.etlHeapMb}`],
    )
  await supervisor.start('api', ['api'], { ...env, DATABASE_URL: roles.evf_api }, [
    `--max-old-space-size=${config.apiHeapMb}`,
  ])
  if (config.simulator) await supervisor.start('simulator', ['simulate'], env)

  const base = `http://${config.apiHost === '0.0.0.0' ? '127.0.0.1' : config.apiHost}:${config.apiPort}`
  await waitForHttp(`${base}/health`, 30_000)
  const startupMs = Math.round(performance.now() - t0)
  process.stdout.write(
    `${[
      '',
      '  EV factory pipeline is up',
      `  Dashboard    ${base}/`,
      `  API          ${base}/sensor-data`,
      `  API docs     ${base}/docs`,
      `  Kafka        ${services.kafkaBrokers}${config.kafkaBrokers ? '' : ' (embedded)'}`,
      `  PostgreSQL   ${services.databaseUrl.replace(/:[^:@/]+@/, ':***@')}${config.databaseUrl ? '' : ' (embedded)'}`,
      `  ETL          ${
        config.orchestrator === 'airflow'
          ? `Airflow DAG ev_factory_etl, ${config.etlSchedule}`
          : config.etlMode === 'schedule'
            ? `scheduled: ${config.etlSchedule}`
            : config.etlMode
      }`,
      `  BI (Tableau) ${roles.evf_bi.replace(/:[^:@/]+@/, ':***@')}  (password in ${config.dataDir}/db-roles.json; views in schema bi, docs/tableau.md)`,
      ...airflowLines,
      `  Data, logs   ${config.dataDir}`,
      `  Started in   ${startupMs} ms (${Object.entries(services.timings)
        .map(([k, v]) => `${k} ${v} ms`)
        .join(', ')})`,
      '  Ctrl-C stops everything.',
      '',
    ].join('\n')}\n`,
  )
  log.info({ startupMs, timings: services.timings }, 'stack up')
  await new Promise<void>((resolve) => {
    const check = setInterval(() => {
      if (shutdown) {
        clearInterval(check)
        void shutdown.then(resolve)
      }
    }, 100)
  })
  log.info('stack stopped')
  return exitCode
}
