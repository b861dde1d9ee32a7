import type pg from 'pg'

/**
 * Runs `fn` in a transaction on `client`: committed if it returns, rolled back if it throws.
 * `begin` may add settings of the transaction to BEGIN, sent in the same round trip.
 */
export async function transaction<T>(
  client: pg.ClientBase,
  fn: () => Promise<T>,
  begin = 'BEGIN',
): Promise<T> {
  await client.query(begin)
  try {
    const result = await fn()
    await client.query('COMMIT')
    return result
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw error
  }
}
