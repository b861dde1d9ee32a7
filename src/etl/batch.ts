import type { Readable } from 'node:stream'
import { setImmediate as yieldToIo } from 'node:timers/promises'

/**
 * Reads batches from an object-mode stream, and stays its reader for the stream's whole life.
 *
 * Why one long-lived reader, not a listener per batch: a Readable whose last 'readable' listener
 * is removed goes back to `readableFlowing === null` on the next tick. The Kafka client's
 * consumer stream (`@platformatic/kafka` 1.x and 2.x) skips fetching while nobody listens, and
 * when Node's own read-ahead (`maybeReadMore` → `_read`) hits that window, `_read` returns
 * without pushing: the stream's `reading` flag then stays set, Node never calls `_read` again,
 * and the consumer stops fetching for good — with an idle CPU and no error. Between two batches
 * the ETL waits for the previous commit, which under sustained load is long enough for that
 * window to be hit (docs/etl.md, "The stall of issue 10"). Keeping one listener attached keeps
 * the stream in paused mode, where `read()` always restarts the fetch loop.
 */
export class BatchReader<T> {
  private wake: (() => void) | undefined
  private ended = false
  private error: Error | undefined

  constructor(private readonly stream: Readable) {
    stream.on('readable', this.notify)
    stream.once('end', this.onEnd)
    stream.once('close', this.onEnd)
    stream.once('error', this.onError)
  }

  /**
   * Up to `max` items: returns as soon as the batch is full, `lingerMs` after its first item,
   * after `idleMs` with nothing (an empty batch, so the caller can check whether it is done), on
   * abort, or when the stream ends. Items are read synchronously from the stream's buffer, so a
   * busy stream costs no promise per message. Rejects with the stream's error.
   */
  async next(max: number, lingerMs: number, idleMs: number, signal?: AbortSignal): Promise<T[]> {
    const batch: T[] = []
    await this.each(max, lingerMs, idleMs, (item) => batch.push(item), signal)
    return batch
  }

  /**
   * As `next`, handing each item to `take` as it is read instead of keeping them, and yielding to
   * the event loop every `yieldEvery` items: what `take` makes of an item is done while the batch
   * fills, and the item itself can die young (the ETL transforms each message on arrival).
   * Answers how many items were taken.
   */
  async each(
    max: number,
    lingerMs: number,
    idleMs: number,
    take: (item: T) => void,
    signal?: AbortSignal,
    yieldEvery = Number.POSITIVE_INFINITY,
  ): Promise<number> {
    let n = 0
    const started = Date.now()
    let firstAt = 0
    while (n < max && !signal?.aborted) {
      if (this.error) throw this.error
      let item = this.stream.read() as T | null
      while (item !== null) {
        take(item)
        if (++n >= max) return n
        if (n % yieldEvery === 0) await yieldToIo()
        item = this.stream.read() as T | null
      }
      if (this.ended) break
      if (n > 0 && firstAt === 0) firstAt = Date.now()
      const deadline = firstAt > 0 ? firstAt + lingerMs : started + idleMs
      const wait = deadline - Date.now()
      if (wait <= 0) break
      await this.until(wait, signal)
    }
    if (this.error && n === 0) throw this.error
    return n
  }

  /** Lets go of the stream (before it is closed). */
  close(): void {
    this.stream.off('readable', this.notify)
    this.stream.off('end', this.onEnd)
    this.stream.off('close', this.onEnd)
    this.stream.off('error', this.onError)
    this.notify()
  }

  /** Resolves on the next 'readable', end, error or abort, or after `ms`. */
  private until(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', done)
        this.wake = undefined
        resolve()
      }
      const timer = setTimeout(done, ms)
      signal?.addEventListener('abort', done, { once: true })
      this.wake = done
    })
  }

  private readonly notify = () => this.wake?.()
  private readonly onEnd = () => {
    this.ended = true
    this.notify()
  }
  private readonly onError = (error: Error) => {
    this.error = error
    this.notify()
  }
}
