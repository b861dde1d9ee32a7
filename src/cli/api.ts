import type { Command } from 'commander'
import { settings } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { apiBase } from '../shared/http.ts'
import { createLogger } from '../shared/log.ts'
import { configOf, dbLost, SETTINGS, untilSignal, withSettings } from './options.ts'

export function apiCommand(program: Command): void {
  withSettings(program.command('api').description('serve the HTTP API and its docs'), SETTINGS.API).action(
    serve,
  )
}

async function serve(_o: unknown, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const log = createLogger('api', config.logLevel)
  const [{ createPool }, { buildApp, readTlsPair }, alarms] = await Promise.all([
    import('../db/index.ts'),
    import('../api/index.ts'),
    // The alarm evaluator and notifier run here unless they run elsewhere (`evf alarms run`).
    config.alarmEvaluator === 'api' ? import('../alarms/index.ts') : undefined,
  ])
  // The read pool, a hot standby's (DATABASE_READ_URL), has the same limits.
  const poolOn = (url: string, application: string) =>
    createPool(url, {
      max: 10,
      application,
      statementTimeoutMs: config.apiStatementTimeoutMs,
      onError: dbLost(log),
    })
  const pool = poolOn(config.databaseUrl, 'evf-api')
  const tls = config.apiTlsCert ? await readTlsPair(config.apiTlsCert, config.apiTlsKey) : undefined
  const readPool = config.databaseReadUrl ? poolOn(config.databaseReadUrl, 'evf-api-reads') : undefined
  const app = await buildApp({
    pool,
    readPool,
    logger: log,
    config,
    auth: config.apiAuth,
    tls,
    alarms:
      alarms &&
      ((catalog) => alarms.startAlarms(config, { pool, log, catalog, dashboardUrl: `${apiBase(config)}/` })),
  })
  await app.listen({ host: config.apiHost, port: config.apiPort }).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw error
    const message = `port ${config.apiPort} is already in use: stop what listens there, or set ${settings.apiPort.env}`
    throw new PipelineError('SERVICE_START_FAILED', message, { cause: error })
  })
  await new Promise((resolve) => untilSignal().addEventListener('abort', resolve))
  await app.close()
  await readPool?.end()
  await pool.end()
}
