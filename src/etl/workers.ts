import { type ChildProcess, spawn } from 'node:child_process'
import type { Logger } from '../shared/log.ts'
import { stopChild } from '../shared/process.ts'
import { sleep } from '../shared/time.ts'

/**
 * `etl follow --etl-workers N`: N worker processes in one consumer group, so the partitions are
 * split between them and a load uses both cores. A worker that dies is started again after a
 * short, growing pause — logged, never silent — and its partitions move to the others meanwhile.
 * On abort every worker is asked to finish its batch and stop.
 */
export async function runWorkerProcesses(
  n: number,
  argv: { node: string; execArgv: string[]; cli: string; env: Record<string, string> },
  log: Logger,
  signal: AbortSignal,
): Promise<void> {
  const children = new Set<ChildProcess>()
  const one = async (index: number) => {
    let restarts = 0
    while (!signal.aborted) {
      const child = spawn(argv.node, [...argv.execArgv, argv.cli, 'etl', 'follow', '--etl-workers', '1'], {
        env: { ...process.env, ...argv.env, EVF_SUPERVISED: '1', EVF_ETL_WORKER: String(index) },
        stdio: ['ignore', 'inherit', 'inherit'],
      })
      children.add(child)
      const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)))
      children.delete(child)
      if (signal.aborted) return
      restarts++
      const delay = Math.min(30_000, 1000 * 2 ** Math.min(restarts, 5))
      log.error({ worker: index, exitCode: code, restartInMs: delay }, 'ETL worker exited; starting it again')
      await sleep(delay, signal)
    }
  }
  const running = Array.from({ length: n }, (_, i) => one(i + 1))
  log.info({ workers: n }, 'ETL worker processes started')
  await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }))
  await Promise.all([...children].map((c) => stopChild(c, 30_000)))
  await Promise.all(running)
}
