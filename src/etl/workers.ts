import { spawn } from 'node:child_process'
import type { Config } from '../config/index.ts'
import { CatalogFollower, loadCatalog, type Pool } from '../db/index.ts'
import { classify, PipelineError } from '../errors/index.ts'
import { createConsumer } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { restartWithBackoff, Supervisor } from '../shared/supervisor.ts'
import { StallWatchdog } from './watchdog.ts'
import type { RunSummary } from './worker.ts'

/**
 * `etl follow`: `etlWorkers` worker processes in one consumer group, so the partitions are split
 * between them and a load uses every core, under a supervisor (`shared/supervisor.ts`) whose
 * policy for them is restart with backoff: a worker that dies is started again after a short,
 * growing pause — logged, never silent — and its partitions move to the others meanwhile. The
 * supervisor's `StallWatchdog` restarts the workers when messages wait and nothing is committed
 * for `etlStallSec` (a frozen process, a consumer that stopped fetching). On abort every worker
 * is asked to finish its batch and stop.
 */
export async function runWorkerProcesses(
  config: Config,
  pool: Pool,
  argv: { node: string; execArgv: string[]; cli: string; env: Record<string, string> },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const applied = await loadCatalog(pool)
  if (!applied) throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
  // The watchdog watches the topics of the catalog in force (the workers follow it themselves).
  const catalog = new CatalogFollower(pool, applied, () => undefined, log)
  const topics = () => catalog.catalog.topicsOf(config.topicPrefix)
  await checkKafkaAccess(config, topics())
  // Aborted (a signal to this process, and in a terminal to the workers too): nothing restarts.
  const supervisor = new Supervisor({ log, signal })
  for (let index = 1; index <= config.etlWorkers; index++) {
    await supervisor.start({
      name: `etl-worker-${index}`,
      command: argv.node,
      args: [...argv.execArgv, argv.cli, 'etl', 'follow', '--etl-workers', '1'],
      env: { ...argv.env, EVF_ETL_WORKER: String(index) },
      restart: restartWithBackoff(HEALTHY_RUN_MS),
      output: 'inherit',
      label: 'ETL worker',
      logFields: { worker: index },
    })
  }
  // SIGTERM lets a live worker finish its batch; a frozen one gets SIGKILL after the grace.
  const watchdog = new StallWatchdog(config, pool, log, topics, () => supervisor.recycle(STALLED_GRACE_MS))
  log.info({ workers: config.etlWorkers, stallSec: config.etlStallSec }, 'ETL worker processes started')
  watchdog.start()
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await watchdog.stop()
  await supervisor.stopAll({ graceMs: 30_000, parallel: true })
  await catalog.close()
}

/**
 * A refused login or a missing ACL stops `etl follow` at once, naming the user, rather than its
 * workers crash-looping on it. Kafka unreachable is not decided here: the workers wait for it.
 */
async function checkKafkaAccess(config: Config, topics: string[]): Promise<void> {
  const consumer = createConsumer(config, `evf-etl-check-${process.pid}`, `${config.etlGroupId}-watchdog`)
  try {
    await consumer.listOffsets({ topics })
  } catch (error) {
    const e = classify(error, config.kafkaUsername)
    if (e.code === 'KAFKA_AUTH') throw e
  } finally {
    await consumer.close().catch(() => undefined)
  }
}

/** A worker that lived this long before it exited was not crash-looping. */
const HEALTHY_RUN_MS = 60_000
/** How long a stalled worker gets to stop on SIGTERM before SIGKILL. */
const STALLED_GRACE_MS = 5000

/**
 * `etl run --etl-workers N`: the topics are dealt out to N bounded runs in processes of their
 * own (a process uses one core; the transform is CPU-bound), and their summaries are merged into
 * one. Any failing worker fails the whole run with its exit code.
 */
export async function runBoundedProcesses(
  topics: string[],
  n: number,
  argv: { node: string; execArgv: string[]; cli: string; env: Record<string, string> },
): Promise<{ summary: RunSummary; exitCode: number; pids: number[] }> {
  const groups = Array.from({ length: Math.min(n, topics.length) }, (_, i) =>
    topics.filter((_, j) => j % n === i),
  )
  const pids: number[] = []
  const results = await Promise.all(
    groups.map(
      (group) =>
        new Promise<{ code: number; out: string }>((resolve) => {
          const child = spawn(
            argv.node,
            [...argv.execArgv, argv.cli, 'etl', 'run', '--etl-workers', '1', '--topic', ...group],
            { env: { ...process.env, ...argv.env }, stdio: ['ignore', 'pipe', 'inherit'] },
          )
          if (child.pid) pids.push(child.pid)
          let out = ''
          child.stdout.on('data', (d) => (out += d))
          child.once('exit', (code) => resolve({ code: code ?? 1, out }))
        }),
    ),
  )
  const summaries = results.flatMap((r) => (r.out.trim() ? [JSON.parse(r.out) as RunSummary] : []))
  const summary: RunSummary = {
    mode: 'bounded',
    status:
      summaries.every((s) => s.status === 'ok') && summaries.length === groups.length ? 'ok' : 'aborted',
    startedAt: summaries.map((s) => s.startedAt).sort()[0] ?? new Date().toISOString(),
    durationMs: Math.max(0, ...summaries.map((s) => s.durationMs)),
    loaded: sum(summaries, (s) => s.loaded),
    rejected: sum(summaries, (s) => s.rejected),
    batches: sum(summaries, (s) => s.batches),
    fencedRetries: sum(summaries, (s) => s.fencedRetries),
    retries: sum(summaries, (s) => s.retries),
    partitions: summaries.flatMap((s) => s.partitions),
  }
  return { summary, exitCode: Math.max(0, ...results.map((r) => r.code)), pids }
}

const sum = (xs: RunSummary[], f: (s: RunSummary) => number) => xs.reduce((n, s) => n + f(s), 0)
