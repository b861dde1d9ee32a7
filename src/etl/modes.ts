import { allTopics } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import type { Pool } from '../db/index.ts'
import { classify } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { backoff, sleep } from '../shared/time.ts'
import { RunRecord } from './runs.ts'
import { EtlWorker, type RunSummary } from './worker.ts'

/**
 * `etl run`: everything in the topics at start, then return the summary. When Kafka or
 * PostgreSQL goes away mid-run, it says what it waits for and tries again with a jittered,
 * growing backoff for up to `etlRetryForSec`, resuming from the offsets PostgreSQL holds; the
 * run still ends at the end offsets it saw at start.
 */
export async function runBounded(
  config: Config,
  pool: Pool,
  log: Logger,
  topics = allTopics(config.topicPrefix),
  signal?: AbortSignal,
  mode: 'bounded' | 'scheduled' = 'bounded',
): Promise<RunSummary> {
  const worker = new EtlWorker(config, pool, log, { bounded: true, topics })
  const record = await RunRecord.start(pool, log, mode)
  const giveUpAt = Date.now() + config.etlRetryForSec * 1000
  for (let attempt = 1; ; attempt++) {
    try {
      const summary = await worker.run(signal)
      await record.finish({
        rows: summary.loaded,
        deadLetters: summary.rejected,
        error: summary.status === 'aborted' ? 'aborted by a signal before the end' : undefined,
      })
      return summary
    } catch (error) {
      const e = classify(error, config.kafkaUsername)
      if (!e.canRetry || signal?.aborted || Date.now() >= giveUpAt) {
        const { loaded, rejected } = worker.counts()
        await record.finish({ rows: loaded, deadLetters: rejected, error: `${e.code}: ${e.message}` })
        throw e
      }
      const delay = backoff(attempt)
      worker.retries++
      log.warn(
        {
          code: e.code,
          waitingFor: e.code === 'KAFKA_UNREACHABLE' ? 'Kafka' : 'PostgreSQL',
          retryInMs: delay,
          attempt,
          err: e.message,
        },
        `waiting for ${e.code === 'KAFKA_UNREACHABLE' ? 'Kafka' : 'PostgreSQL'}`,
      )
      await sleep(delay, signal)
    }
  }
}

/**
 * `etl follow`: load continuously until aborted. A failure (broker or database gone) is logged
 * with what it waits for, and the worker starts again after a jittered exponential backoff.
 */
export async function follow(config: Config, pool: Pool, log: Logger, signal: AbortSignal): Promise<void> {
  let attempt = 0
  const record = await RunRecord.start(pool, log, 'continuous')
  const total = { loaded: 0, rejected: 0 }
  let worker: EtlWorker | undefined
  const current = () => {
    const c = worker?.counts() ?? { loaded: 0, rejected: 0 }
    return { rows: total.loaded + c.loaded, deadLetters: total.rejected + c.rejected }
  }
  const progress = setInterval(() => {
    const c = current()
    void record.progress(c.rows, c.deadLetters)
  }, 5000)
  while (!signal.aborted) {
    try {
      worker = new EtlWorker(config, pool, log, {
        bounded: false,
        topics: allTopics(config.topicPrefix),
      })
      log.info({ group: config.etlGroupId }, 'ETL following the station topics')
      await worker.run(signal)
      attempt = 0
    } catch (error) {
      const e = classify(error, config.kafkaUsername)
      // A refused login or a missing ACL does not mend by itself: stop, saying which user.
      if (e.code === 'KAFKA_AUTH') {
        clearInterval(progress)
        await record.finish({ ...current(), error: `${e.code}: ${e.message}` })
        throw e
      }
      attempt++
      const delay = backoff(attempt)
      log.error({ code: e.code, err: e.message, retryInMs: delay, attempt }, 'ETL failed; retrying')
      await sleep(delay, signal)
    } finally {
      const c = worker?.counts() ?? { loaded: 0, rejected: 0 }
      total.loaded += c.loaded
      total.rejected += c.rejected
      worker = undefined
    }
  }
  clearInterval(progress)
  await record.finish(current())
}
