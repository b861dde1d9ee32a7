import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import type { Pool } from '../pool.ts'

/**
 * API credentials (migration 0005): `evf_<id>_<secret>`. The id (12 alphanumerics) finds the row;
 * the secret (32 random bytes, base64url) is kept only as its SHA-256 and compared in constant
 * time. Scopes: `read` (readings, stats, stream, dashboard), `export`, `admin` (pipeline internals,
 * dead letters, any future write), `metrics` (Prometheus).
 */
export const SCOPES = ['read', 'export', 'admin', 'metrics'] as const
export type Scope = (typeof SCOPES)[number]
export type TokenKind = 'api' | 'login' | 'session'

const ALPHANUMERIC = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789'
/** The shape of a credential; anything else is refused before a query. */
export const CREDENTIAL = /^evf_([A-Za-z0-9]{12})_([A-Za-z0-9_-]{43})$/

function newId(): string {
  // 62 does not divide 256: bytes ≥ 248 are drawn again so every character is equally likely.
  let id = ''
  while (id.length < 12) {
    for (const b of randomBytes(16)) if (b < 248 && id.length < 12) id += ALPHANUMERIC[b % 62]
  }
  return id
}

const sha256 = (text: string) => createHash('sha256').update(text).digest()

export interface Issued {
  id: string
  token: string
}

/** A new credential of `kind`: its row is inserted, and the token is returned once, never stored. */
export async function issueToken(
  pool: Pool,
  kind: TokenKind,
  name: string,
  scopes: readonly Scope[],
  expiresAt: Date | null = null,
): Promise<Issued> {
  const id = newId()
  const secret = randomBytes(32).toString('base64url')
  await pool.query(
    'INSERT INTO api_tokens (id, kind, name, secret_hash, scopes, expires_at) VALUES ($1, $2, $3, $4, $5, $6)',
    [id, kind, name, sha256(secret), scopes, expiresAt],
  )
  return { id, token: `evf_${id}_${secret}` }
}

export interface Verified {
  id: string
  kind: TokenKind
  name: string
  scopes: Scope[]
}

export type Refusal = 'malformed' | 'unknown' | 'revoked' | 'expired' | 'wrong kind'

/** Checks a presented credential of one of `kinds`: who it is, or why it is refused. */
export async function verifyToken(
  pool: Pool,
  token: string,
  kinds: readonly TokenKind[],
): Promise<Verified | Refusal> {
  const m = CREDENTIAL.exec(token)
  if (!m) return 'malformed'
  const [, id, secret] = m as unknown as [string, string, string]
  const { rows } = await pool.query<{
    kind: TokenKind
    name: string
    secret_hash: Buffer
    scopes: Scope[]
    revoked: boolean
    expired: boolean
  }>(
    `SELECT kind, name, secret_hash, scopes, revoked_at IS NOT NULL AS revoked,
            coalesce(expires_at <= now(), false) AS expired
     FROM api_tokens WHERE id = $1`,
    [id],
  )
  const row = rows[0]
  // An unknown id is compared against a dummy hash, so that both paths take the same time.
  const expected = row?.secret_hash ?? DUMMY
  const equal = timingSafeEqual(sha256(secret), expected)
  if (!row || !equal) return 'unknown'
  if (row.revoked) return 'revoked'
  if (row.expired) return 'expired'
  if (!kinds.includes(row.kind)) return 'wrong kind'
  return { id, kind: row.kind, name: row.name, scopes: row.scopes }
}
const DUMMY = Buffer.alloc(32)

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

/**
 * A one-time dashboard login token with the scopes a person at the dashboard needs (`read`,
 * `export`), valid 7 days. Earlier unredeemed login tokens are revoked: only the newest link works.
 */
export async function newLoginToken(pool: Pool): Promise<string> {
  await pool.query("UPDATE api_tokens SET revoked_at = now() WHERE kind = 'login' AND revoked_at IS NULL")
  const expires = new Date(Date.now() + 7 * 86_400_000)
  return (await issueToken(pool, 'login', 'dashboard login', ['read', 'export'], expires)).token
}

export interface TokenInfo {
  id: string
  name: string
  scopes: Scope[]
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
