import { sleep } from './time.ts'

/** Polls `url` every 200 ms until it answers 2xx or `timeoutMs` has passed (resolves either way). */
export async function waitForHttp(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if ((await fetch(url)).ok) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
}
