import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { CatalogFollower, loadCatalog, type Pool } from '../db/index.ts'
import { classify, PipelineError } from '../errors/index.ts'
import { createAdmin, prefixedTopics } from '../kafka/index.ts'
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
  // The catalog applied when the run starts: what its readings are checked against.
  const catalog = await appliedCatalog(pool)
  const worker = new EtlWorker(config, pool, log, {
    bounded: true,
    topics: topics ?? (await topicsToLoad(config, catalog)),
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

/**
 * What the ETL reads: the catalog's station topics and every other topic under the prefix (the
 * pipeline's namespace), so that readings of a station the catalog does not know yet, or no longer
 * knows, become dead letters (UNKNOWN_STATION) to re-drive rather than messages nobody reads.
 */
export async function topicsToLoad(config: Config, catalog: Catalog): Promise<string[]> {
  const admin = createAdmin(config, `evf-etl-topics-${process.pid}`)
  try {
    const found = await prefixedTopics(admin, config.topicPrefix)
    return [...new Set([...catalog.topicsOf(config.topicPrefix), ...found])].sort()
  } finally {
    await admin.close()
  }
}

/** How often a continuous ETL looks for new topics under the prefix (besides each catalog version). */
const DISCOVER_EVERY_MS = 30_000

/** The catalog in force; none applied is a configuration error (`evf db migrate` applies one). */
async function appliedCatalog(pool: Pool): Promise<Catalog> {
  const catalog = await loadCatalog(pool)
  if (!catalog) throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
  return catalog
}

/**
 * `etl follow`: load continuously until aborted. A failure (broker or database gone) is logged
 * with what it waits for, and the worker starts again after a jittered exponential backoff. The
 * catalog is followed live: each batch is checked against the version in force. When the topics
 * to read change (a station added to the catalog, a new topic under the prefix: looked for at each
 * version and every 30 s), the worker leaves its group and joins again subscribed to the new set,
 * without a restart of the process.
 */
export async function follow(config: Config, pool: Pool, log: Logger, signal: AbortSignal): Promise<void> {
  const record = await RunRecord.start(pool, log, 'continuous')
  let catalog: CatalogFollower | undefined
  let resubscribe = new AbortController()
  /** Resubscribes when the topics to read are not the worker's (never throws: tried again later). */
  const rediscover = async () => {
    if (!catalog || !worker) return
    try {
      const topics = await topicsToLoad(config, catalog.catalog)
      if (worker && topics.join(',') !== [...worker.topics].sort().join(',')) {
        log.info({ topics }, 'the topics to read changed: subscribing again')
        resubscribe.abort()
      }
    } catch (error) {
      log.warn({ err: String(error) }, 'could not list the topics under the prefix; trying again later')
    }
  }
  const discovery = setInterval(() => void rediscover(), DISCOVER_EVERY_MS)
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
        catalog = new CatalogFollower(pool, initial, () => void rediscover(), log)
      }
      const follower = catalog
      resubscribe = new AbortController()
      const topics = await topicsToLoad(config, follower.catalog)
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
      clearInterval(discovery)
      await catalog?.close()
      await record.finish({ ...current(), error: `${e.code}: ${e.message}` })
      throw e
    }
    // Any other failure ends here only because the signal aborted during the wait.
  }
  clearInterval(progress)
  clearInterval(discovery)
  await catalog?.close()
  await record.finish(current())
}
