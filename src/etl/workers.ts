import { type ChildProcess, spawn } from 'node:child_process'
import type { Config } from '../config/index.ts'
import type { Pool } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { stopChild } from '../shared/process.ts'
import { backoff, sleep } from '../shared/time.ts'
import { StallWatchdog } from './watchdog.ts'
import type { RunSummary } from './worker.ts'

/**
 * `etl follow`: `etlWorkers` worker processes in one consumer group, so the partitions are split
 * between them and a load uses every core, under a supervisor that watches them. A worker that
 * dies is started again after a short, growing pause — logged, never silent — and its partitions
 * move to the others meanwhile. The supervisor's `StallWatchdog` restarts the workers when
 * messages wait and nothing is committed for `etlStallSec` (a frozen process, a consumer that
 * stopped fetching). On abort every worker is asked to finish its batch and stop.
 */
export async function runWorkerProcesses(
  config: Config,
  pool: Pool,
  argv: { node: string; execArgv: string[]; cli: string; env: Record<string, string> },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const children = new Map<number, ChildProcess>()
  const one = async (index: number) => {
    let restarts = 0
    while (!signal.aborted) {
      const child = spawn(argv.node, [...argv.execArgv, argv.cli, 'etl', 'follow', '--etl-workers', '1'], {
        env: { ...process.env, ...argv.env, EVF_SUPERVISED: '1', EVF_ETL_WORKER: String(index) },
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      children.set(index, child)
      const startedAt = Date.now()
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
      children.delete(index)
      if (signal.aborted) return
      // A worker that ran for a while before it died starts again at once; a crash loop backs off.
      restarts = Date.now() - startedAt > HEALTHY_RUN_MS ? 1 : restarts + 1
      const delay = backoff(restarts)
      log.error(
        { worker: index, pid: child.pid, exitCode: code, signal: child.signalCode, restartInMs: delay },
        'ETL worker exited; starting it again',
      )
      await sleep(delay, signal)
    }
  }
  const watchdog = new StallWatchdog(config, pool, log, async () => {
    // SIGTERM lets a live worker finish its batch; a frozen one gets SIGKILL after the grace.
    await Promise.all([...children.values()].map((c) => stopChild(c, STALLED_GRACE_MS)))
  })
  const running = Array.from({ length: config.etlWorkers }, (_, i) => one(i + 1))
  log.info({ workers: config.etlWorkers, stallSec: config.etlStallSec }, 'ETL worker processes started')
  watchdog.start()
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await watchdog.stop()
  await Promise.all([...children.values()].map((c) => stopChild(c, 30_000)))
  await Promise.all(running)
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
