import type { Command } from 'commander'
import { type Config, configToEnv } from '../config/index.ts'
import { errorCodes, PipelineError } from '../errors/index.ts'
import { createLogger } from '../shared/log.ts'
import { etlWorkerHeapFlags } from '../shared/supervisor.ts'
import { deadLetterCommands } from './dead-letters.ts'
import { configOf, dbLost, SETTINGS, untilSignal, withPool, withSettings } from './options.ts'

/** `etl run`, `follow`, `schedule`, `skip` and `dead-letters`; `entry` is the CLI its worker processes run. */
export function etlCommands(program: Command, entry: string): void {
  const etl = program.command('etl').description('Kafka → PostgreSQL, exactly once')
  withSettings(
    etl
      .command('run')
      .description('load everything in the topics at start, then exit with a JSON summary on stdout')
      .option('--topic <topic...>', 'only these topics (default: every station topic)'),
    SETTINGS.ETL,
  ).action((o: { topic?: string[] }, cmd: Command) => runOnce(o.topic, cmd, entry))
  for (const [name, description] of [
    ['follow', 'load continuously until stopped'],
    ['schedule', 'run bounded loads on the cron schedule until stopped'],
  ] as const) {
    withSettings(etl.command(name).description(description), SETTINGS.ETL).action((_o, cmd: Command) =>
      runUntilStopped(name, cmd, entry),
    )
  }
  withSettings(
    etl
      .command('skip')
      .description(
        "move a partition held back at a record batch that cannot be decoded past that batch; the batch's raw bytes become a dead letter",
      )
      .requiredOption('--topic <topic>', 'the held-back partition’s topic')
      .requiredOption('--partition <n>', 'its partition number', (v) => Number(v)),
    SETTINGS.DB,
  ).action(skip)
  deadLetterCommands(etl)
}

/** How an ETL worker process is started: this Node with the heap limits set once, and the config. */
const workerArgv = (config: Config, cli: string) => ({
  node: process.execPath,
  execArgv: [
    ...process.execArgv.filter(
      (a) => !/^--(max-old-space-size|max-semi-space-size|initial-old-space-size)/.test(a),
    ),
    ...etlWorkerHeapFlags(config.etlHeapMb),
  ],
  cli,
  env: configToEnv(config),
})

async function runOnce(topic: string[] | undefined, cmd: Command, entry: string): Promise<void> {
  const config = await configOf(cmd, ['kafka', 'database'], 'etl')
  const log = createLogger('etl', config.logLevel)
  const etl = await import('../etl/index.ts')
  if (config.etlWorkers > 1) {
    // The topics to read (the catalog's and any other under the prefix), dealt out to the workers.
    const { loadCatalog } = await import('../db/index.ts')
    const catalog = await withPool(config, loadCatalog)
    if (!catalog)
      throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
    const topics = topic ?? (await etl.topicsToLoad(config, catalog))
    const run = await etl.runBoundedProcesses(topics, config.etlWorkers, workerArgv(config, entry))
    process.stdout.write(`${JSON.stringify(run.summary)}\n`)
    process.exitCode = run.exitCode
    return
  }
  const options = { application: 'evf-etl', onError: dbLost(log) }
  await withPool(
    config,
    async (pool) => {
      const summary = await etl.runBounded(config, pool, log, topic, untilSignal())
      process.stdout.write(`${JSON.stringify(summary)}\n`)
      // Stopped by a signal before its end: the summary says how far it got; schedulers see a failure.
      if (summary.status === 'aborted') process.exitCode = errorCodes.ABORTED.exitCode
    },
    options,
  )
}

async function runUntilStopped(name: 'follow' | 'schedule', cmd: Command, entry: string): Promise<void> {
  const config = await configOf(cmd, ['kafka', 'database'], 'etl')
  const log = createLogger('etl', config.logLevel)
  const etl = await import('../etl/index.ts')
  // `etl follow` supervises its worker processes (and watches them for a stall); a worker
  // process (EVF_ETL_WORKER) loads.
  if (name === 'follow' && !process.env.EVF_ETL_WORKER) {
    const options = { application: 'evf-etl-supervisor', max: 2, onError: dbLost(log) }
    const argv = workerArgv(config, entry)
    return withPool(config, (pool) => etl.runWorkerProcesses(config, pool, argv, log, untilSignal()), options)
  }
  // `etl schedule` is the built-in orchestrator's cron (orchestrator/builtin.ts).
  const fn = name === 'follow' ? etl.follow : (await import('../orchestrator/index.ts')).scheduleEtl
  const options = { application: `evf-etl-${name}`, onError: dbLost(log) }
  await withPool(config, (pool) => fn(config, pool, log, untilSignal()), options)
}

async function skip(o: { topic: string; partition: number }, cmd: Command): Promise<void> {
  if (!Number.isInteger(o.partition) || o.partition < 0)
    throw new PipelineError('CONFIG_INVALID', '--partition must be a partition number (0, 1, …)')
  const config = await configOf(cmd, ['database'])
  const db = await import('../db/index.ts')
  await withPool(config, async (pool) => {
    const skipped = await db.inTransaction(pool, (client) => db.skipBlocked(client, o.topic, o.partition))
    if (!skipped) {
      const held = (await db.blockedPartitions(pool)).map((b) => `${b.topic}[${b.partition}]`)
      throw new PipelineError(
        'CONFIG_INVALID',
        `${o.topic}[${o.partition}] is not held back at an undecodable batch (held back: ${held.join(', ') || 'none'})`,
      )
    }
    process.stdout.write(`${JSON.stringify(skipped)}\n`)
  })
}
