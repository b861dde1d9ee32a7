/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal?.aborted) return resolve()
    const done = () => {
      clearTimeout(timer)
      signal?.removeEventListener('abort', done)
      resolve()
    }
    const timer = setTimeout(done, ms)
    signal?.addEventListener('abort', done, { once: true })
  })

/**
 * The project's one retry delay: jittered exponential backoff, 0.5 s, 1 s, 2 s … capped at
 * `maxMs` (30 s unless said), each between half and all of it (so many clients retrying at once
 * spread out).
 */
export const backoff = (attempt: number, maxMs = 30_000): number =>
  Math.round(Math.min(maxMs, 500 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2))
