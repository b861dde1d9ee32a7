import type { Readable } from 'node:stream'

/**
 * Collects up to `max` items from an object-mode stream: returns as soon as the batch is full,
 * `lingerMs` after its first item, after `idleMs` with nothing (an empty batch, so the caller can
 * check whether it is done), on abort, or when the stream ends. Items are read synchronously
 * from the stream's buffer, so a busy stream costs no promise per message.
 */
export function nextBatch<T>(
  stream: Readable,
  max: number,
  lingerMs: number,
  idleMs: number,
  signal?: AbortSignal,
): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const batch: T[] = []
    let lingerTimer: NodeJS.Timeout | undefined
    const idleTimer = setTimeout(() => finish(), idleMs)
    const cleanup = () => {
      clearTimeout(idleTimer)
      if (lingerTimer) clearTimeout(lingerTimer)
      stream.off('readable', drain)
      stream.off('error', onError)
      stream.off('end', finish)
      stream.off('close', finish)
      signal?.removeEventListener('abort', finish)
    }
    function finish() {
      cleanup()
      resolve(batch)
    }
    function onError(error: Error) {
      cleanup()
      reject(error)
    }
    function drain() {
      while (batch.length < max) {
        const item = stream.read() as T | null
        if (item === null) break
        batch.push(item)
      }
      if (batch.length >= max) return finish()
      if (batch.length > 0 && !lingerTimer) lingerTimer = setTimeout(finish, lingerMs)
    }
    if (signal?.aborted) return resolve(batch)
    stream.on('readable', drain)
    stream.once('error', onError)
    stream.once('end', finish)
    stream.once('close', finish)
    signal?.addEventListener('abort', finish, { once: true })
    drain()
  })
}
