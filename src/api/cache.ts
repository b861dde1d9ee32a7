import type { FastifyInstance } from 'fastify'

interface Entry {
  at: number
  body: Buffer
  headers: Record<string, string>
}

/**
 * A response cache for the read endpoints whose answers change only when the ETL commits:
 * entries are dropped at once when a load transaction commits (the live feed's notification),
 * and live at most `ttlMs` in any case (windows that end "now" slide with time). While the feed
 * is not listening, nothing is cached: without notifications a stale answer could outlive a load.
 *
 * Many dashboards polling the same newest page, or the same hour of a trend, then cost one query
 * per commit instead of one per request. Bodies are kept as bytes, so a hit allocates nothing.
 */
export class ResponseCache {
  private readonly entries = new Map<string, Entry>()
  /** keys being computed: concurrent misses wait for the first instead of all asking PostgreSQL */
  private readonly inflight = new Map<string, { done: Promise<void>; resolve: () => void }>()
  private bytes = 0
  /** bumped by every invalidation: an answer computed across one is not stored */
  generation = 0
  /** answers served from the cache, computed, and invalidations: for /metrics */
  readonly stats = { hits: 0, misses: 0, invalidations: 0 }

  constructor(
    private readonly ttlMs: number,
    private readonly maxBytes = 32 * 2 ** 20,
    private readonly maxEntryBytes = 2 * 2 ** 20,
  ) {}

  get enabled(): boolean {
    return this.ttlMs > 0
  }

  invalidate(): void {
    this.stats.invalidations++
    this.generation++
    this.entries.clear()
    this.bytes = 0
  }

  get(key: string): Entry | undefined {
    const e = this.entries.get(key)
    if (!e) return undefined
    if (Date.now() - e.at > this.ttlMs) {
      this.delete(key)
      return undefined
    }
    return e
  }

  /** Resolves when the request computing `key` (if any) has answered; false if none was. */
  async waitFor(key: string): Promise<boolean> {
    const f = this.inflight.get(key)
    if (!f) return false
    await f.done
    return true
  }

  /**
   * Marks `key` as being computed, unless another request already is; returns the release to
   * call once answered (it wakes the requests that waited).
   */
  begin(key: string): () => void {
    if (this.inflight.has(key)) return () => undefined
    let resolve!: () => void
    const done = new Promise<void>((r) => {
      resolve = r
    })
    const flight = { done, resolve }
    this.inflight.set(key, flight)
    return () => {
      flight.resolve()
      if (this.inflight.get(key) === flight) this.inflight.delete(key)
    }
  }

  set(key: string, generation: number, body: Buffer, headers: Record<string, string>): void {
    if (generation !== this.generation || body.length > this.maxEntryBytes) return
    this.delete(key)
    // Oldest first out (a Map iterates in insertion order) until the new entry fits.
    for (const k of this.entries.keys()) {
      if (this.bytes + body.length <= this.maxBytes) break
      this.delete(k)
    }
    this.entries.set(key, { at: Date.now(), body, headers })
    this.bytes += body.length
  }

  private delete(key: string): void {
    const e = this.entries.get(key)
    if (!e) return
    this.bytes -= e.body.length
    this.entries.delete(key)
  }
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** answers of this route may be served from the ResponseCache */
    cacheable?: boolean
  }
  interface FastifyRequest {
    cacheGeneration?: number
    cacheRelease?: () => void
  }
}

const KEPT_HEADERS = ['content-type', 'link']

/**
 * Serves cacheable routes (`config: { cacheable: true }`) from `cache` when `isLive()`. Runs
 * after validation, so a bad parameter is still a 400; only 200 answers are stored.
 */
export function useResponseCache(app: FastifyInstance, cache: ResponseCache, isLive: () => boolean): void {
  app.addHook('preHandler', async (req, reply) => {
    if (!req.routeOptions.config.cacheable || !isLive()) return
    const key = req.url
    let hit = cache.get(key)
    // Another request is computing this answer (a burst right after a commit): wait for it.
    if (!hit && (await cache.waitFor(key))) hit = cache.get(key)
    if (hit) {
      cache.stats.hits++
      reply.headers({ ...hit.headers, 'x-cache': 'hit' })
      return reply.send(hit.body)
    }
    cache.stats.misses++
    req.cacheRelease = cache.begin(key)
    req.cacheGeneration = cache.generation
  })
  app.addHook('onSend', async (req, reply, payload) => {
    if (req.cacheGeneration === undefined || reply.statusCode !== 200 || typeof payload !== 'string')
      return payload
    const headers: Record<string, string> = {}
    for (const h of KEPT_HEADERS) {
      const v = reply.getHeader(h)
      if (v !== undefined) headers[h] = String(v)
    }
    const body = Buffer.from(payload)
    cache.set(req.url, req.cacheGeneration, body, headers)
    reply.header('x-cache', 'miss')
    return body
  })
  // Whatever the outcome (an error, a 400, a closed socket), the waiters are released.
  app.addHook('onResponse', async (req) => req.cacheRelease?.())
  app.addHook('onRequestAbort', async (req) => req.cacheRelease?.())
}
