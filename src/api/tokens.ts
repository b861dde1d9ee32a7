import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { insertToken, type Pool, revokeLogins, tokenById } from '../db/index.ts'

/**
 * API credentials, the policy (docs/security.md; the rows are db/queries/tokens.ts):
 * `evf_<id>_<secret>`. The id (12 alphanumerics) finds the row; the secret (32 random bytes,
 * base64url) is kept only as its SHA-256 and compared in constant time. Scopes: `read`
 * (readings, stats, stream, alarms, dashboard), `export`, `admin` (pipeline internals, dead
 * letters, alarm rules, any future write), `metrics` (Prometheus), `operate` (acting on alarms:
 * acknowledge, shelve, take out of service, silence). This module loads no server, so the CLI and
 * `stack up` import it on its own to mint credentials (api/index.ts re-exports it).
 */
export const SCOPES = ['read', 'export', 'admin', 'metrics', 'operate'] as const
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
  await insertToken(pool, { id, kind, name, secretHash: sha256(secret), scopes, expiresAt })
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
  const row = await tokenById(pool, id)
  // An unknown id is compared against a dummy hash, so that both paths take the same time.
  const expected = row?.secret_hash ?? DUMMY
  const equal = timingSafeEqual(sha256(secret), expected)
  if (!row || !equal) return 'unknown'
  if (row.revoked) return 'revoked'
  if (row.expired) return 'expired'
  // The table's CHECKs hold kind and scopes to TokenKind and SCOPES.
  const kind = row.kind as TokenKind
  if (!kinds.includes(kind)) return 'wrong kind'
  return { id, kind, name: row.name, scopes: row.scopes as Scope[] }
}
const DUMMY = Buffer.alloc(32)

/** What a person at the dashboard may do: see, download, and acknowledge or shelve alarms. */
export const DASHBOARD_SCOPES: readonly Scope[] = ['read', 'export', 'operate']

/**
 * A one-time dashboard login token with the scopes a person at the dashboard needs
 * (`DASHBOARD_SCOPES`; the session it is redeemed for gets them), valid 7 days. Earlier unredeemed
 * login tokens are revoked: only the newest link works.
 */
export async function newLoginToken(pool: Pool): Promise<string> {
  await revokeLogins(pool)
  const expires = new Date(Date.now() + 7 * 86_400_000)
  return (await issueToken(pool, 'login', 'dashboard login', DASHBOARD_SCOPES, expires)).token
}

/** A one-time dashboard login URL (what `npm start` prints, and `evf login-url`). */
export async function newLoginUrl(pool: Pool, base: string): Promise<string> {
  return `${base}/login?token=${await newLoginToken(pool)}`
}
