import pg from 'pg'
import { classify } from '../errors/index.ts'
import { transaction } from './queries/transaction.ts'

// int8 (ids, Kafka offsets, counts) as JS numbers: exact below 2^53, which a plant's row ids and
// offsets stay far below. Code that needs the full range casts to text in SQL.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export type Pool = pg.Pool

export interface PoolOptions {
  max?: number
  statementTimeoutMs?: number
  application?: string
  /** an idle connection that fails (server restart): the pool drops it; this is told why */
  onError?: (error: Error) => void
}

export function createPool(url: string, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 5,
    application_name: opts.application ?? 'evf',
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    connectionTimeoutMillis: 10_000,
  })
  // Without a listener, an idle client's error (e.g. "terminating connection due to
  // administrator command") would crash the process.
  pool.on('error', opts.onError ?? (() => undefined))
  return pool
}

/**
 * Runs `fn` with a client checked out of the pool. A connection that breaks while checked out
 * emits 'error' outside any query, which would crash the process without a listener: it is
 * caught here, and the query in flight rejects instead. A client that failed is destroyed, not
 * returned to the pool.
 */
export async function withClient<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect()
  let broken: Error | undefined
  const onError = (error: Error) => {
    broken = error
  }
  client.on('error', onError)
  try {
    return await fn(client)
  } catch (error) {
    if (classify(error).code === 'DATABASE_UNREACHABLE') broken ??= error as Error
    throw error
  } finally {
    client.off('error', onError)
    client.release(broken)
  }
}

/** `fn` in one transaction on a client of the pool (see `withClient` and `transaction`). */
export function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  return withClient(pool, (client) => transaction(client, () => fn(client)))
}
