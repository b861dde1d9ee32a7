import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { CatalogFollower, loadCatalog, type Pool } from '../db/index.ts'
import { classify, PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { retry } from '../shared/retry.ts'
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
  topics?: string[],
  signal?: AbortSignal,
  mode: 'bounded' | 'scheduled' = 'bounded',
): Promise<RunSummary> {
  // The catalog applied when the run starts: its topics, and what its readings are checked against.
  const catalog = await appliedCatalog(pool)
  const worker = new EtlWorker(config, pool, log, {
    bounded: true,
    topics: topics ?? catalog.topicsOf(config.topicPrefix),
    catalog: () => catalog,
  })
  const record = await RunRecord.start(pool, log, mode)
  const giveUpAt = Date.now() + config.etlRetryForSec * 1000
  try {
    const summary = await retry(() => worker.run(signal), {
      signal,
      stop: (error) => !classify(error, config.kafkaUsername).canRetry || Date.now() >= giveUpAt,
      onRetry: ({ error, attempt, delayMs }) => {
        const e = classify(error, config.kafkaUsername)
        const waitingFor = e.code === 'KAFKA_UNREACHABLE' ? 'Kafka' : 'PostgreSQL'
        worker.retries++
        log.warn(
          { code: e.code, waitingFor, retryInMs: delayMs, attempt, err: e.message },
          `waiting for ${waitingFor}`,
        )
      },
    })
    await record.finish({
      rows: summary.loaded,
      deadLetters: summary.rejected,
      error: summary.status === 'aborted' ? 'aborted by a signal before the end' : undefined,
    })
    return summary
  } catch (error) {
    const e = classify(error, config.kafkaUsername)
    const { loaded, rejected } = worker.counts()
    await record.finish({ rows: loaded, deadLetters: rejected, error: `${e.code}: ${e.message}` })
    throw e
  }
}

/** The catalog in force; none applied is a configuration error (`evf db migrate` applies one). */
async function appliedCatalog(pool: Pool): Promise<Catalog> {
  const catalog = await loadCatalog(pool)
  if (!catalog) throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
  return catalog
}

/**
 * `etl follow`: load continuously until aborted. A failure (broker or database gone) is logged
 * with what it waits for, and the worker starts again after a jittered exponential backoff. The
 * catalog is followed live: each batch is checked against the version in force, and a version
 * that changes the topics (a station added or retired) has the worker leave its group and join
 * again subscribed to the new ones, without a restart of the process.
 */
export async function follow(config: Config, pool: Pool, log: Logger, signal: AbortSignal): Promise<void> {
  const record = await RunRecord.start(pool, log, 'continuous')
  let catalog: CatalogFollower | undefined
  let resubscribe = new AbortController()
  const topicsOf = (c: Catalog) => c.topicsOf(config.topicPrefix).sort().join(',')
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
  const once = async () => {
    try {
      if (!catalog) {
        const initial = await appliedCatalog(pool)
        catalog = new CatalogFollower(
          pool,
          initial,
          (next) => {
            if (topicsOf(next) !== worker?.topics.slice().sort().join(',')) resubscribe.abort()
          },
          log,
        )
      }
      const follower = catalog
      resubscribe = new AbortController()
      const topics = follower.catalog.topicsOf(config.topicPrefix)
      worker = new EtlWorker(config, pool, log, { bounded: false, topics, catalog: () => follower.catalog })
      log.info(
        { group: config.etlGroupId, topics, catalogVersion: follower.catalog.version },
        'ETL following the station topics',
      )
      await worker.run(AbortSignal.any([signal, resubscribe.signal]))
    } finally {
      const c = worker?.counts() ?? { loaded: 0, rejected: 0 }
      total.loaded += c.loaded
      total.rejected += c.rejected
      worker = undefined
    }
  }
  try {
    // A worker that returns before the signal (none does today) is started again at once.
    while (!signal.aborted) {
      await retry(once, {
        signal,
        // A refused login or a missing ACL does not mend by itself: stop, saying which user.
        stop: (error) => classify(error, config.kafkaUsername).code === 'KAFKA_AUTH',
        onRetry: ({ error, attempt, delayMs }) => {
          const e = classify(error, config.kafkaUsername)
          log.error({ code: e.code, err: e.message, retryInMs: delayMs, attempt }, 'ETL failed; retrying')
        },
      })
    }
  } catch (error) {
    const e = classify(error, config.kafkaUsername)
    if (e.code === 'KAFKA_AUTH') {
      clearInterval(progress)
      await catalog?.close()
      await record.finish({ ...current(), error: `${e.code}: ${e.message}` })
      throw e
    }
    // Any other failure ends here only because the signal aborted during the wait.
  }
  clearInterval(progress)
  await catalog?.close()
  await record.finish(current())
}
