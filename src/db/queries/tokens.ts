import type { Pool } from '../pool.ts'

/**
 * `api_tokens` (migration 0005): the rows behind API credentials. What a credential looks like,
 * its scopes and how its secret is hashed and checked are the API's (api/tokens.ts); here are
 * only the statements. Kinds and scopes are text here, held to their lists by the table's CHECKs.
 */

/** A credential's row as it is inserted: the secret only as its hash. */
export interface NewToken {
  id: string
  kind: string
  name: string
  secretHash: Buffer
  scopes: readonly string[]
  expiresAt: Date | null
}

export async function insertToken(pool: Pool, t: NewToken): Promise<void> {
  await pool.query(
    'INSERT INTO api_tokens (id, kind, name, secret_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [t.id, t.kind, t.name, t.secretHash, t.scopes, t.expiresAt],
  )
}

/** A credential's row as verification reads it: revoked and expired decided by the database clock. */
export interface TokenRow {
  kind: string
  name: string
  secret_hash: Buffer
  scopes: string[]
  revoked: boolean
  expired: boolean
}

/** The credential of this id, if there is one. */
export async function tokenById(pool: Pool, id: string): Promise<TokenRow | undefined> {
  const { rows } = await pool.query<TokenRow>(
    `SELECT kind, name, secret_hash, scopes, revoked_at IS NOT NULL AS revoked,
            coalesce(expires_at <= now(), false) AS expired
     FROM api_tokens WHERE id = $1`,
    [id],
  )
  return rows[0]
}

/** Marks credentials used now (the API batches these, at most once a minute per credential). */
export async function touchTokens(pool: Pool, ids: string[]): Promise<void> {
  if (ids.length > 0) await pool.query('UPDATE api_tokens SET last_used_at = now() WHERE id = ANY($1)', [ids])
}

/** Revokes a one-time login token as it is redeemed; false when it was redeemed already. */
export async function consumeLogin(pool: Pool, id: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    "UPDATE api_tokens SET revoked_at = now(), last_used_at = now() WHERE id = $1 AND kind = 'login' AND revoked_at IS NULL",
    [id],
  )
  return rowCount === 1
}

/** Revokes every login token not yet redeemed. */
export async function revokeLogins(pool: Pool): Promise<void> {
  await pool.query("UPDATE api_tokens SET revoked_at = now() WHERE kind = 'login' AND revoked_at IS NULL")
}

export interface TokenInfo {
  id: string
  name: string
  scopes: string[]
  created_at: Date
  last_used_at: Date | null
  revoked_at: Date | null
}

/** Named API tokens (not logins or sessions), newest first; never their secrets. */
export async function listTokens(pool: Pool): Promise<TokenInfo[]> {
  const { rows } = await pool.query<TokenInfo>(
    `SELECT id, name, scopes, created_at, last_used_at, revoked_at FROM api_tokens
     WHERE kind = 'api' ORDER BY created_at DESC`,
  )
  return rows
}

/** Revokes the active API token of this name or id; false when there is none. */
export async function revokeToken(pool: Pool, nameOrId: string): Promise<boolean> {
  const { rowCount } = await pool.query(
    `UPDATE api_tokens SET revoked_at = now()
     WHERE kind = 'api' AND revoked_at IS NULL AND (name = $1 OR id = $1)`,
    [nameOrId],
  )
  return (rowCount ?? 0) > 0
}
