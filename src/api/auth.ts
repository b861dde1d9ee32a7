import { createHash } from 'node:crypto'
import cookie from '@fastify/cookie'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { Type } from 'typebox'
import { consumeLogin, type Pool, touchTokens } from '../db/index.ts'
import { asProblem, problem, sendProblem } from './problems.ts'
import { issueToken, type Refusal, type Scope, type Verified, verifyToken } from './tokens.ts'
import type { Api } from './types.ts'

declare module 'fastify' {
  interface FastifyContextConfig {
    /** what a caller needs: a scope, or `public` (no credential); routes without one need `admin` */
    scope?: Scope | 'public'
  }
  interface FastifyRequest {
    /** who called, once authenticated */
    principal?: Verified
  }
}

export const SESSION_COOKIE = 'evf_session'
const SESSION_DAYS = 7
/** Longest Authorization header or cookie looked at: a credential is 61 characters. */
const MAX_CREDENTIAL = 256
/** A verified credential is trusted this long without asking PostgreSQL (so a revocation takes this long). */
const VERIFIED_TTL_MS = 5_000
/**
 * A refused credential is refused this long without asking PostgreSQL: a wrong token sent again
 * and again costs a hash, not a query. Safe: an unknown, revoked or expired token never becomes valid.
 */
const REFUSED_TTL_MS = 60_000

export interface AuthOptions {
  mode: 'on' | 'off'
  pool: Pool
  /** HTTPS: the session cookie is `Secure` */
  secure: boolean
  /** failed authentications an address may make per minute before it waits (0: no limit) */
  failuresPerMinute: number
}

/** Public routes: the process's health, the API's documents, the dashboard's shell and its login. */
const PUBLIC_PREFIXES = ['/docs', '/assets/']

/**
 * Authentication and scopes for every route (docs/security.md). A caller sends
 * `Authorization: Bearer evf_…` (a named token), or the dashboard's session cookie. No credential,
 * or a bad one, is a 401; a credential without the route's scope is a 403. Failed attempts are
 * logged (never the secret) and limited per address.
 */
export async function useAuth(app: Api, opts: AuthOptions): Promise<void> {
  await app.register(cookie)
  app.addHook('onRoute', (route) => {
    route.config ??= {}
    const config = route.config as { scope?: Scope | 'public' }
    if (PUBLIC_PREFIXES.some((p) => route.url.startsWith(p))) config.scope = 'public'
    config.scope ??= 'admin'
    if (config.scope === 'public' || opts.mode === 'off' || !route.schema) return
    // The contract says so: which credentials, and the 401 and 403 answers.
    route.schema.security = [{ bearer: [] }, { session: [] }]
    route.schema.response = { ...(route.schema.response as object), 401: asProblem, 403: asProblem }
    route.schema.description = `${route.schema.description ?? ''}\n\nNeeds scope \`${config.scope}\`.`.trim()
  })
  loginRoute(app, opts)
  if (opts.mode === 'off') return
  const verifier = new Verifier(opts.pool)
  const failures = new FailureLimiter(opts.failuresPerMinute)
  app.addHook('onClose', async () => verifier.close())
  app.addHook('onRequest', async (req, reply) => {
    const scope = req.routeOptions.config.scope
    if (req.is404 || scope === undefined || scope === 'public') return
    // Over the limit, an address's bad credentials wait but a valid one is still served: one
    // misconfigured script behind a shared address must not lock out everyone behind it.
    const over = failures.blocked(req.ip)
    const presented = credentialOf(req)
    if (typeof presented === 'string') {
      return over && presented !== 'missing' ? tooMany(reply) : refuse(req, reply, presented, failures)
    }
    const verified = await verifier.verify(presented.token, presented.kind)
    if (typeof verified === 'string') {
      return over ? tooMany(reply) : refuse(req, reply, verified, failures, presented.token)
    }
    if (!verified.scopes.includes(scope)) {
      const detail = `${req.routeOptions.url} needs scope "${scope}"; this credential has ${verified.scopes.join(', ') || 'none'}`
      return sendProblem(reply, problem('FORBIDDEN', detail, { instance: req.url }))
    }
    req.principal = verified
  })
}

/**
 * Who made a request, as the alarms' history keeps it: a token's name (unique among active
 * tokens), or the dashboard session's name and id (the id is not secret).
 */
export function actorOf(req: FastifyRequest): string {
  const p = req.principal
  if (!p) return 'anonymous (authentication off)'
  return p.kind === 'session' ? `${p.name} (${p.id})` : p.name
}

/** The presented credential, a bearer token (`api`) or the session cookie, or why there is none. */
function credentialOf(req: FastifyRequest): Presented | 'missing' | 'malformed' {
  const header = req.headers.authorization
  if (header !== undefined) {
    if (header.length > MAX_CREDENTIAL) return 'malformed'
    const m = /^Bearer +(\S+) *$/i.exec(header)
    return m ? { kind: 'api', token: m[1]! } : 'malformed'
  }
  const session = req.cookies[SESSION_COOKIE]
  if (session !== undefined)
    return session.length > MAX_CREDENTIAL ? 'malformed' : { kind: 'session', token: session }
  return 'missing'
}
// An object, not a prefixed string: `string | 'missing'` is just `string`, and a missing
// credential was once verified as the token "issing" and counted as a failure.
interface Presented {
  kind: 'api' | 'session'
  token: string
}

const tooMany = (reply: FastifyReply) =>
  sendProblem(
    reply,
    problem('RATE_LIMITED', 'too many failed authentications from this address; wait a minute'),
  )

function refuse(
  req: FastifyRequest,
  reply: FastifyReply,
  why: Refusal | 'missing',
  failures: FailureLimiter,
  token?: string,
) {
  const detail: Record<Refusal | 'missing', string> = {
    missing: 'send Authorization: Bearer <token> (evf tokens create), or log in to the dashboard',
    malformed: 'the credential is not of the form evf_<id>_<secret>',
    unknown: 'the credential is not known',
    revoked: 'the credential was revoked',
    expired: 'the credential has expired; log in again',
    'wrong kind': 'this kind of credential is not accepted here',
  }
  if (why !== 'missing') {
    failures.record(req.ip)
    // The id part is not secret and says which token; the secret is never logged.
    const id = token === undefined ? undefined : /^evf_([A-Za-z0-9]{12})_/.exec(token)?.[1]
    req.log.warn(
      { ip: req.ip, reason: why, credentialId: id, route: req.routeOptions.url },
      'authentication refused',
    )
  }
  reply.header('www-authenticate', 'Bearer realm="evf"')
  return sendProblem(reply, problem('UNAUTHENTICATED', detail[why], { instance: req.url }))
}

/**
 * `GET /login?token=…`: redeems a one-time login token (the URL `npm start` prints) for a session
 * cookie (HttpOnly, SameSite=Strict), then sends the browser to the dashboard, which drops the
 * token from the address bar.
 */
function loginRoute(app: Api, opts: AuthOptions): void {
  app.get(
    '/login',
    {
      config: { scope: 'public' },
      schema: {
        summary: 'Redeem a one-time dashboard login token for a session cookie',
        tags: ['auth'],
        querystring: Type.Object(
          { token: Type.String({ maxLength: MAX_CREDENTIAL, description: 'the one-time login token' }) },
          { additionalProperties: false },
        ),
        response: {
          303: { description: 'to the dashboard, with the session cookie set', type: 'null' },
          401: asProblem,
          429: asProblem,
          500: asProblem,
          503: asProblem,
        },
      },
    },
    async (req, reply) => {
      if (opts.mode === 'off') return reply.redirect('/', 303)
      const login = await verifyToken(opts.pool, req.query.token, ['login'])
      if (typeof login === 'string' || !(await consumeLogin(opts.pool, login.id))) {
        req.log.warn({ ip: req.ip, reason: typeof login === 'string' ? login : 'used' }, 'login refused')
        const detail = 'this login link is unknown or was used already: `evf login-url` prints a new one'
        return sendProblem(reply, problem('UNAUTHENTICATED', detail, { instance: '/login' }))
      }
      const expires = new Date(Date.now() + SESSION_DAYS * 86_400_000)
      const session = await issueToken(
        opts.pool,
        'session',
        `session from ${login.name}`,
        login.scopes,
        expires,
      )
      req.log.info({ ip: req.ip, login: login.id, session: session.id }, 'dashboard login')
      return reply
        .setCookie(SESSION_COOKIE, session.token, {
          httpOnly: true,
          sameSite: 'strict',
          secure: opts.secure,
          path: '/',
          expires,
        })
        .redirect('/', 303)
    },
  )
}

/**
 * Verifies credentials, remembering good ones briefly and refused ones for a minute, and notes
 * the good ones' last use once a minute.
 */
class Verifier {
  private readonly good = new Map<string, { verified: Verified; until: number }>()
  private readonly refused = new Map<string, { why: Refusal; kind: 'api' | 'session'; until: number }>()
  private readonly used = new Map<string, number>()
  private readonly flush: NodeJS.Timeout

  constructor(private readonly pool: Pool) {
    this.flush = setInterval(() => void this.touch(), 60_000)
    this.flush.unref()
  }

  async verify(token: string, kind: 'api' | 'session'): Promise<Verified | Refusal> {
    const key = createHash('sha256').update(token).digest('base64')
    const now = Date.now()
    const hit = this.good.get(key)
    const miss = this.refused.get(key)
    if (miss && miss.until > now && miss.kind === kind) return miss.why
    let verified: Verified | Refusal
    if (hit && hit.until > now && hit.verified.kind === kind) verified = hit.verified
    else {
      verified = await verifyToken(this.pool, token, [kind])
      if (typeof verified === 'string')
        remember(this.refused, key, { why: verified, kind, until: now + REFUSED_TTL_MS })
      else remember(this.good, key, { verified, until: now + VERIFIED_TTL_MS })
    }
    if (typeof verified !== 'string') this.used.set(verified.id, now)
    return verified
  }

  private async touch(): Promise<void> {
    const ids = [...this.used.keys()]
    this.used.clear()
    await touchTokens(this.pool, ids).catch(() => undefined)
  }

  async close(): Promise<void> {
    clearInterval(this.flush)
    await this.touch()
  }
}

/** A bounded cache: past 10,000 entries it starts over. */
function remember<V>(cache: Map<string, V>, key: string, value: V): void {
  if (cache.size > 10_000) cache.clear()
  cache.set(key, value)
}

/** Failed authentications per client address in the last minute; too many and the address waits. */
class FailureLimiter {
  private readonly seen = new Map<string, number[]>()

  constructor(private readonly perMinute: number) {}

  record(ip: string): void {
    const now = Date.now()
    const recent = (this.seen.get(ip) ?? []).filter((t) => t > now - 60_000)
    recent.push(now)
    if (this.seen.size > 10_000) this.seen.clear()
    this.seen.set(ip, recent)
  }

  blocked(ip: string): boolean {
    const recent = this.seen.get(ip)
    if (this.perMinute === 0 || recent === undefined) return false
    return recent.filter((t) => t > Date.now() - 60_000).length >= this.perMinute
  }
}
