import { readFileSync } from 'node:fs'
import { request } from 'node:https'
import { sleep } from './time.ts'

/** Where a person on this machine reaches the API (a wildcard bind is reached on loopback). */
export function apiBase(config: { apiHost: string; apiPort: number; apiTlsCert: string }): string {
  const host = ['0.0.0.0', '::', ''].includes(config.apiHost) ? '127.0.0.1' : config.apiHost
  return `${config.apiTlsCert ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${config.apiPort}`
}

/** Whether `url` answers 2xx; over HTTPS, trusting the certificate in `caFile` (a self-signed one). */
async function answers(url: string, caFile?: string): Promise<boolean> {
  if (!url.startsWith('https:') || !caFile) return (await fetch(url)).ok
  const ca = readFileSync(caFile)
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, servername: 'localhost' }, (res) => {
      res.resume()
      resolve((res.statusCode ?? 500) < 300)
    })
    req.on('error', reject)
    req.end()
  })
}

/** Polls `url` every 200 ms until it answers 2xx or `timeoutMs` has passed (resolves either way). */
export async function waitForHttp(url: string, timeoutMs: number, caFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    try {
      if (await answers(url, caFile)) return
    } catch {
      // not listening yet
    }
    await sleep(200)
  }
}
