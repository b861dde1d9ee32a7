import { createHash } from 'node:crypto'
import type pg from 'pg'
import {
  Catalog,
  type CatalogDiff,
  type CatalogDocument,
  catalogFromFile,
  diffCatalogs,
  isEmptyDiff,
} from '../catalog/index.ts'
import type { Logger } from '../shared/log.ts'
import { retry } from '../shared/retry.ts'
import { type Pool, withClient } from './pool.ts'
import {
  CATALOG_CHANNEL,
  catalogVersion,
  lastAppliedFrom,
  listenChannel,
  lockCatalog,
  notifyCatalog,
  readCatalogState,
  transaction,
  writeCatalogVersion,
  writeDerived,
} from './queries/index.ts'

/** The applied catalog, with its retired stations and limits' history; undefined before the first. */
export async function loadCatalog(db: Pool | pg.PoolClient): Promise<Catalog | undefined> {
  if ('release' in db) return catalogOf(await readCatalogState(db))
  return withClient(db, async (client) => catalogOf(await readCatalogState(client)))
}

const catalogOf = (state: Awaited<ReturnType<typeof readCatalogState>>) =>
  state ? new Catalog(state.document, state.history) : undefined

export interface ApplyResult {
  /** the version in force after the apply */
  version: number
  diff: CatalogDiff
  /** false when the document was the applied one: nothing was written */
  changed: boolean
  catalog: Catalog
}

export const sha256 = (document: CatalogDocument): string =>
  createHash('sha256').update(JSON.stringify(document)).digest('hex')

/**
 * Applies a checked catalog document as the next version, in one transaction: the diff against
 * the applied one decides what is added, changed (new limits from now) and retired; every
 * process following the catalog hears of it at commit. A document equal to the one in force is
 * not a new version, unless `record` (a new source to remember). `dryRun` computes the diff only.
 */
export async function applyCatalog(
  client: pg.ClientBase,
  document: CatalogDocument,
  opts: { source: string; dryRun?: boolean; record?: boolean },
): Promise<ApplyResult> {
  return transaction(client, async () => {
    await lockCatalog(client)
    const state = await readCatalogState(client)
    const before = catalogOf(state)
    const version = (before?.version ?? 0) + 1
    const next = new Catalog(document, { ...state?.history, version })
    const diff = diffCatalogs(before, next)
    const unchanged = before && isEmptyDiff(diff) && !opts.record
    if (before && (unchanged || opts.dryRun)) {
      if (unchanged) await writeDerived(client, before)
      return { version: before.version, diff, changed: false, catalog: before }
    }
    if (opts.dryRun) return { version: 0, diff, changed: false, catalog: next }
    await writeCatalogVersion(client, next, diff, { source: opts.source, sha256: sha256(document) })
    // Read back: the stations it retired and the limits, as stored; the views derive from that.
    const stored = catalogOf(await readCatalogState(client))!
    await writeDerived(client, stored)
    await notifyCatalog(client, version)
    return { version, diff, changed: true, catalog: stored }
  })
}

/**
 * What `stack up` and `db migrate` do with EVF_CATALOG: apply it when its content was never
 * applied from that file (a new database, a new EVF_CATALOG, an edit of the file); a version
 * applied from elsewhere since (`evf catalog apply my-plant.yaml`) stays in force across restarts
 * until then. Otherwise re-derives the views from the version in force (a migration may change them).
 */
export async function applyCatalogFile(client: pg.ClientBase, path: string): Promise<ApplyResult> {
  const document = catalogFromFile(path).document
  const state = await readCatalogState(client)
  if (state && (await lastAppliedFrom(client, path)) === sha256(document)) {
    const catalog = new Catalog(state.document, state.history)
    await transaction(client, () => writeDerived(client, catalog))
    return { version: catalog.version, diff: diffCatalogs(catalog, catalog), changed: false, catalog }
  }
  // Recorded even when it equals the version in force: from now on, this file's content is known.
  return applyCatalog(client, document, { source: path, record: true })
}

/**
 * Follows the applied catalog: LISTENs on its channel (reconnecting with the one `retry`), and
 * reads the newest version on each notification, on each reconnection and every `pollMs` as a
 * safety net. `onChange` gets each new version once, in order.
 */
export class CatalogFollower {
  private current: Catalog
  private readonly closing = new AbortController()
  private listener: { close(): Promise<void> } | undefined
  private loop: Promise<void> | undefined
  private reading: Promise<void> = Promise.resolve()
  private readonly timer: NodeJS.Timeout

  constructor(
    private readonly pool: Pool,
    initial: Catalog,
    private readonly onChange: (catalog: Catalog) => void,
    private readonly log?: Logger,
    pollMs = 30_000,
  ) {
    this.current = initial
    this.keepListening()
    this.timer = setInterval(() => this.refresh(), pollMs)
    this.timer.unref()
  }

  get catalog(): Catalog {
    return this.current
  }

  /** Reads the newest version now (serialised: one read at a time, in order). */
  refresh(): Promise<void> {
    this.reading = this.reading.then(async () => {
      if (this.closing.signal.aborted) return
      try {
        if ((await catalogVersion(this.pool)) <= this.current.version) return
        const next = await loadCatalog(this.pool)
        if (!next || next.version <= this.current.version) return
        this.current = next
        this.log?.info({ version: next.version }, 'catalog version applied')
        this.onChange(next)
      } catch (error) {
        this.log?.warn({ err: String(error) }, 'could not read the catalog; trying again at the next notice')
      }
    })
    return this.reading
  }

  private keepListening(): void {
    if (this.loop || this.closing.signal.aborted) return
    this.loop = retry(
      async () => {
        this.listener = await listenChannel(
          this.pool,
          CATALOG_CHANNEL,
          () => void this.refresh(),
          (error) => {
            this.log?.warn({ err: String(error) }, 'catalog listener lost; reconnecting')
            this.listener = undefined
            this.keepListening()
          },
        )
        // Versions applied while not listening were not heard.
        void this.refresh()
      },
      { signal: this.closing.signal },
    )
      .catch(() => undefined)
      .finally(() => {
        this.loop = undefined
        // A connection lost before this loop had ended is listened for again.
        if (!this.listener) this.keepListening()
      })
  }

  async close(): Promise<void> {
    this.closing.abort()
    clearInterval(this.timer)
    await this.loop
    await this.listener?.close()
    await this.reading
  }
}
