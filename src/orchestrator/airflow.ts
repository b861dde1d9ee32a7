import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Config } from '../config/index.ts'
import { ensureDatabase } from '../db/index.ts'
import { type KafkaSettings, kafkaEnv } from '../kafka/index.ts'
import { waitForHttp } from '../shared/http.ts'
import { repoRoot } from '../shared/paths.ts'
import { runToolOk } from '../shared/process.ts'
import { component } from '../shared/supervisor.ts'
import type { Orchestrator, OrchestratorContext } from './types.ts'

export const airflowVenv = join(repoRoot, '.cache', 'airflow', 'venv')
export const airflowBin = join(airflowVenv, 'bin', 'airflow')
export const DAG_ID = 'ev_factory_etl'
const USER = 'admin'

/** Installs (or checks) the Airflow venv from the committed lock: `scripts/venv-setup.mjs airflow`. */
export async function installAirflow(): Promise<void> {
  await runToolOk(process.execPath, [join(repoRoot, 'scripts', 'venv-setup.mjs'), 'airflow'], {
    stdio: 'inherit',
    cwd: repoRoot,
  })
}

/** The metadata database's URL: a database named `airflowDb` on the server of `databaseUrl`. */
export function metadataUrl(databaseUrl: string, airflowDb: string): string {
  const url = new URL(databaseUrl)
  url.pathname = `/${airflowDb}`
  url.protocol = 'postgresql+psycopg2:'
  return url.toString()
}

export interface AirflowEnvOptions {
  home: string
  /** the ETL's Kafka login: the DAG's `etl run` tasks use it (user `etl` under `stack up`) */
  kafka: KafkaSettings
  databaseUrl: string
  airflowDb: string
  port: number
  schedule: string
  topicPrefix: string
  retentionDays?: number
  cli?: string
}

/**
 * The environment of every Airflow process: metadata in PostgreSQL, our DAG folder, no example
 * DAGs, new DAGs unpaused, and sized for 2 cores (LocalExecutor, parallelism 2, one API worker,
 * one parsing process). The DAG's own settings (EVF_*) ride along; see airflow/dags/.
 */
export function airflowEnv(o: AirflowEnvOptions): Record<string, string> {
  return {
    AIRFLOW_HOME: o.home,
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN: metadataUrl(o.databaseUrl, o.airflowDb),
    AIRFLOW__CORE__DAGS_FOLDER: join(repoRoot, 'airflow', 'dags'),
    AIRFLOW__CORE__LOAD_EXAMPLES: 'False',
    AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION: 'False',
    AIRFLOW__CORE__EXECUTOR: 'LocalExecutor',
    AIRFLOW__CORE__PARALLELISM: '2',
    AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG: '2',
    AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES: '1',
    AIRFLOW__API__WORKERS: '1',
    AIRFLOW__API__HOST: '127.0.0.1',
    AIRFLOW__API__PORT: String(o.port),
    AIRFLOW__API__BASE_URL: `http://127.0.0.1:${o.port}`,
    AIRFLOW__CORE__EXECUTION_API_SERVER_URL: `http://127.0.0.1:${o.port}/execution/`,
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS: `${USER}:admin`,
    AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE: join(o.home, 'passwords.json'),
    AIRFLOW__LOGGING__BASE_LOG_FOLDER: join(o.home, 'logs'),
    PATH: `${join(airflowVenv, 'bin')}:${process.env.PATH ?? ''}`,
    // KAFKA_PASSWORD is masked in task logs and rendered fields by the DAG (mask_secret).
    ...kafkaEnv(o.kafka),
    DATABASE_URL: o.databaseUrl,
    EVF_NODE: process.execPath,
    EVF_CLI: o.cli ?? join(repoRoot, 'dist', 'cli.js'),
    EVF_REPO_ROOT: repoRoot,
    EVF_TOPIC_PREFIX: o.topicPrefix,
    EVF_AIRFLOW_SCHEDULE: o.schedule,
    // `evf db maintain` (the DAG's last task) applies the retention.
    EVF_RETENTION_DAYS: String(o.retentionDays ?? 0),
  }
}

/** The UI password: chosen once per data directory and kept where the auth manager reads it. */
export async function uiCredentials(home: string): Promise<{ user: string; password: string }> {
  const file = join(home, 'passwords.json')
  await mkdir(home, { recursive: true })
  if (existsSync(file)) {
    const stored = JSON.parse(await readFile(file, 'utf8')) as Record<string, string>
    if (stored[USER]) return { user: USER, password: stored[USER] }
  }
  const password = randomBytes(9).toString('base64url')
  await writeFile(file, JSON.stringify({ [USER]: password }), { mode: 0o600 })
  return { user: USER, password }
}

/** `airflow db migrate`: creates or upgrades the metadata tables. */
export async function migrateMetadata(env: Record<string, string>): Promise<void> {
  await runToolOk(airflowBin, ['db', 'migrate'], { env: { ...process.env, ...env }, cwd: repoRoot })
}

/** The Airflow 3 processes `stack up` runs, in start order. */
export const AIRFLOW_PROCESSES = ['api-server', 'scheduler', 'dag-processor', 'triggerer'] as const

export const airflowHome = (config: Config): string => join(config.dataDir, 'airflow')

/**
 * The Airflow orchestrator, the built-in one's peer: installs or checks the venv, migrates the
 * metadata database, starts Airflow's processes as quiet components of the stack and waits for
 * its UI. The DAG runs the ETL (bounded `etl run`s); the built-in runner stays off.
 */
export const airflow: Orchestrator = {
  async start(ctx: OrchestratorContext) {
    const { config, supervisor, log } = ctx
    log.info('Airflow: installing or checking the venv…')
    await installAirflow()
    const home = airflowHome(config)
    // Airflow creates its tables, not its database.
    await ensureDatabase(ctx.databaseUrl, 'airflow')
    const env = airflowEnv({
      home,
      kafka: ctx.etlKafka,
      databaseUrl: ctx.databaseUrl,
      airflowDb: 'airflow',
      port: config.airflowPort,
      schedule: config.etlSchedule,
      topicPrefix: config.topicPrefix,
      retentionDays: config.retentionDays,
    })
    const { user, password } = await uiCredentials(home)
    log.info('Airflow: migrating its metadata database…')
    await migrateMetadata(env)
    for (const name of AIRFLOW_PROCESSES) {
      const command = { command: airflowBin, args: [name] }
      await supervisor.start(component(`airflow-${name}`, command, env, { output: 'quiet' }))
    }
    const ui = `http://127.0.0.1:${config.airflowPort}`
    await waitForHttp(`${ui}/api/v2/monitor/health`, 120_000)
    return {
      etl: `Airflow DAG ${DAG_ID}, ${config.etlSchedule}`,
      lines: [`  Airflow UI   ${ui}  (user ${user}, password ${password}; logs in ${ctx.logsDir})`],
    }
  },
}
