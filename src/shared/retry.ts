import { backoff, sleep } from './time.ts'

/** What `onRetry` is told before each wait. */
export interface RetryInfo {
  /** failed tries in a row, the one that just failed included: 1 after the first failure */
  attempt: number
  error: unknown
  /** how long it waits before the next try */
  delayMs: number
}

export interface RetryOptions {
  /**
   * Stops the retrying, not a try in progress (pass it to `fn` as well for that): once aborted,
   * a failure is not retried and a wait ends at once; either way `retry` rejects with the last
   * error. `fn` is always tried at least once.
   */
  signal?: AbortSignal
  /** Whether to give up after this failure (`retry` then rejects with it); never, unless said. */
  stop?: (error: unknown, attempt: number) => boolean
  /** Told of each failure that will be retried, before the wait: the place to log it. */
  onRetry?: (info: RetryInfo) => void
  /**
   * A try that lasted longer than this before it failed counts as a first failure again: a run
   * that was healthy for a while is retried soon, a crash loop backs off (the `Supervisor`).
   */
  healthyAfterMs?: number
  /** The wait after failure `attempt`: the project's one jittered `backoff` unless said. */
  delayMs?: (attempt: number) => number
}

/**
 * Calls `fn` until it resolves, waiting `backoff(attempt)` after each failure, and resolves with
 * its value; rejects with the last error once `stop` says so or `signal` aborts.
 *
 * Attempts are counted one way everywhere: `attempt` is the number of failed tries in a row,
 * 1 after the first failure (so the first wait is `backoff(1)`, 0.25–0.5 s), and `fn` is given
 * the number of the try it makes, 1 for the first.
 *
 * Chosen over `p-retry` (docs/architecture.md, "Decisions"): the project's jitter (each delay
 * between half and all of it, the cap jittered too), a stop that ends with the last error rather
 * than an abort reason, and a healthy run starting the count over.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions = {}): Promise<T> {
  const delayMs = opts.delayMs ?? backoff
  let failures = 0
  for (;;) {
    const startedAt = Date.now()
    try {
      return await fn(failures + 1)
    } catch (error) {
      const healthy = opts.healthyAfterMs !== undefined && Date.now() - startedAt > opts.healthyAfterMs
      failures = healthy ? 1 : failures + 1
      if (opts.signal?.aborted || opts.stop?.(error, failures)) throw error
      const delay = delayMs(failures)
      opts.onRetry?.({ attempt: failures, error, delayMs: delay })
      await sleep(delay, opts.signal)
      if (opts.signal?.aborted) throw error
    }
  }
}
