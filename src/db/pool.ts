import pg from 'pg'

// Kafka offsets and ids are bigints: return int8 as a string-free bigint-safe number only where
// it fits, otherwise callers cast in SQL. Here ids and offsets stay well below 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (v) => Number(v))

export type Pool = pg.Pool

export function createPool(
  url: string,
  opts: { max?: number; statementTimeoutMs?: number; application?: string } = {},
): pg.Pool {
  return new pg.Pool({
    connectionString: url,
    max: opts.max ?? 5,
    application_name: opts.application ?? 'evf',
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    connectionTimeoutMillis: 10_000,
  })
}
