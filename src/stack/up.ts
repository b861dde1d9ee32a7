import { type Config, configToEnv } from '../config/index.ts'
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
  let exitCode = 0
  let shutdown: Promise<void> | undefined
  const stop = (reason: string) => {
    if (!shutdown) {
      log.info({ reason }, 'stopping the stack')
      shutdown = supervisor
        .stopAll()
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
    await supervisor.start('etl', ['etl', config.etlMode === 'schedule' ? 'schedule' : 'follow'], env, [
      `--max-old-space-size=${config.etlHeapMb}`,
    ])
  await supervisor.start('api', ['api'], env)
  if (config.simulator) await supervisor.start('simulator', ['simulate'], env)

  const base = `http://${config.apiHost === '0.0.0.0' ? '127.0.0.1' : config.apiHost}:${config.apiPort}`
  await waitForHttp(`${base}/health`, 30_000)
  const startupMs = Math.round(performance.now() - t0)
  process.stdout.write(
    `${[
      '',
      '  EV factory pipeline is up',
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
