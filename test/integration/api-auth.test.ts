import assert from 'node:assert/strict'
import { mkdtemp, readFile, stat } from 'node:fs/promises'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { buildApp, newLoginUrl } from '../../src/api/index.ts'
import { freePort } from '../../src/services/index.ts'
import { cli, collect, isolatedConfig, runCli, waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

/** `evf …` against this test's database, as an operator would run it. */
const evf = (databaseUrl: string, ...args: string[]): Promise<string> =>
  runCli(args, { DATABASE_URL: databaseUrl, EVF_LOG_LEVEL: 'warn' })

describe('API authentication', () => {
  it('needs a token with the route’s scope: none → 401, wrong scope → 403, revoked → 401', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const lines: string[] = []
    const { createLogger } = await import('../../src/shared/log.ts')
    const logger = createLogger('api', 'info', { write: (l: string) => lines.push(l) })
    const app = await buildApp({ pool, logger, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    const get = (url: string, authorization?: string) =>
      app.inject({ url, headers: authorization === undefined ? {} : { authorization } })

    const none = await get('/sensor-data')
    assert.equal(none.statusCode, 401)
    assert.match(none.headers['content-type'] as string, /problem\+json/)
    assert.equal(none.json().code, 'UNAUTHENTICATED')
    assert.equal(none.headers['www-authenticate'], 'Bearer realm="evf"')
    // Open without a credential: health, readiness, the API's documents, the dashboard's shell.
    for (const url of ['/health', '/ready', '/docs/json']) assert.equal((await get(url)).statusCode, 200, url)

    const created = JSON.parse(
      await evf(config.databaseUrl, 'tokens', 'create', '--name', 'grafana', '--scope', 'read', '--json'),
    ) as { token: string; id: string; scopes: string[] }
    rememberSecret(created.token)
    assert.deepEqual(created.scopes, ['read'])
    const bearer = `Bearer ${created.token}`
    assert.equal((await get('/sensor-data', bearer)).statusCode, 200)
    assert.equal((await get('/stats/counts', bearer)).statusCode, 200)
    const forbidden = await get('/export?format=csv', bearer)
    assert.equal(forbidden.statusCode, 403)
    assert.equal(forbidden.json().code, 'FORBIDDEN')
    assert.match(forbidden.json().detail, /needs scope "export"; this credential has read/)
    assert.equal((await get('/metrics', bearer)).statusCode, 403, '/metrics has its own scope')
    assert.equal((await get('/dead-letters', bearer)).statusCode, 403, 'dead letters are pipeline internals')
    const { issueToken } = await import('../../src/api/index.ts')
    const admin = await issueToken(pool, 'api', 'operator', ['admin'])
    rememberSecret(admin.token)
    const dead = await get('/dead-letters', `Bearer ${admin.token}`)
    assert.equal(dead.statusCode, 200)
    assert.deepEqual(dead.json(), [])

    // Only the hash is stored; the list shows no secret, and last use is noted.
    const stored = await pool.query<{ secret_hash: Buffer }>(
      'SELECT secret_hash FROM api_tokens WHERE id = $1',
      [created.id],
    )
    assert.equal(stored.rows[0]!.secret_hash.length, 32)
    const listed = await evf(config.databaseUrl, 'tokens', 'list', '--json')
    assert.ok(listed.includes('grafana') && !listed.includes(created.token.split('_')[2]!))

    await evf(config.databaseUrl, 'tokens', 'revoke', 'grafana')
    // A verified credential is trusted for 5 s without asking PostgreSQL (docs/security.md).
    await waitFor(
      'the revocation to take effect',
      async () => (await get('/sensor-data', bearer)).statusCode === 401,
      10_000,
    )
    assert.match((await get('/sensor-data', bearer)).json().detail, /revoked/)

    // The OpenAPI document says which routes need what.
    const spec = (await get('/docs/json')).json() as {
      paths: Record<string, { get: { security?: unknown[]; responses: Record<string, unknown> } }>
    }
    assert.ok(spec.paths['/sensor-data']!.get.security)
    assert.ok(spec.paths['/sensor-data']!.get.responses['401'] && spec.paths['/export']!.get.responses['403'])
    assert.equal(spec.paths['/health']!.get.security, undefined)

    const secret = created.token.split('_')[2]!
    assert.ok(lines.length > 0)
    assert.ok(!lines.some((l) => l.includes(secret)), 'no log line holds the secret')
  })

  it('refuses hostile credentials with 401, never 500, and limits failed attempts per address', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    const hostile = [
      'Bearer',
      'Bearer ',
      'Basic dXNlcjpwYXNz',
      'Bearer evf_short_secret',
      'Bearer a b',
      `Bearer evf_AAAAAAAAAAAA_${'A'.repeat(43)}`, // well-formed, unknown id
      `Bearer ${'x'.repeat(8_000)}`, // huge
      "Bearer evf_AAAAAAAAAAAA_' OR 1=1 --aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
      'Bearer \u00e9vf_\u00e9',
    ]
    for (const authorization of hostile) {
      const res = await app.inject({ url: '/sensor-data', headers: { authorization } })
      assert.equal(res.statusCode, 401, authorization.slice(0, 40))
      assert.equal(res.json().code, 'UNAUTHENTICATED')
    }
    // A known id with a wrong secret is refused the same way as an unknown id.
    const { issueToken } = await import('../../src/api/index.ts')
    const { id } = await issueToken(pool, 'api', 'probe', ['read'])
    const wrong = await app.inject({
      url: '/sensor-data',
      headers: { authorization: `Bearer evf_${id}_${'B'.repeat(43)}` },
    })
    assert.equal(wrong.statusCode, 401)
    assert.match(wrong.json().detail, /not known/)
    // 10 failures so far; at 20 in a minute the address's bad credentials wait.
    for (let i = 0; i < 10; i++)
      await app.inject({ url: '/sensor-data', headers: { authorization: 'Bearer x' } })
    const limited = await app.inject({ url: '/sensor-data', headers: { authorization: 'Bearer x' } })
    assert.equal(limited.statusCode, 429)
    assert.equal(limited.json().code, 'RATE_LIMITED')
  })

  it('over the failure limit, refuses an address’s bad credentials with 429 from memory, and still serves its valid ones', async (t) => {
    const { pool } = await isolatedConfig(t)
    // The real pool, counting the credential look-ups the API makes.
    let lookups = 0
    const counted = new Proxy(pool, {
      get(target, key, receiver) {
        if (key !== 'query') return Reflect.get(target, key, receiver)
        return (...args: Parameters<typeof pool.query>) => {
          if (String(args[0]).includes('FROM api_tokens')) lookups++
          return (target.query as (...a: unknown[]) => unknown).apply(target, args)
        }
      },
    })
    const app = await buildApp({
      pool: counted,
      logger: false,
      auth: 'on',
      config: { apiRateLimit: 0, apiAuthFailures: 20 },
    })
    t.after(() => app.close())
    const { issueToken } = await import('../../src/api/index.ts')
    const good = await issueToken(pool, 'api', 'good', ['read'])
    const session = await issueToken(pool, 'session', 'a dashboard', ['read'], new Date(Date.now() + 60_000))
    for (const s of [good.token, session.token]) rememberSecret(s)
    const get = (headers: Record<string, string>, remoteAddress = '10.0.0.7') =>
      app.inject({ url: '/sensor-data', headers, remoteAddress })
    // One misconfigured script behind the plant's NAT: the same well-formed wrong token, again and again.
    const script = { authorization: `Bearer evf_AAAAAAAAAAAA_${'A'.repeat(43)}` }
    const codes: number[] = []
    for (let i = 0; i < 25; i++) codes.push((await get(script)).statusCode)
    assert.deepEqual(codes, [...Array(20).fill(401), ...Array(5).fill(429)])
    // Everyone else behind that address still gets in, by token or by the dashboard's cookie.
    assert.equal((await get({ authorization: `Bearer ${good.token}` })).statusCode, 200)
    assert.equal((await get({ cookie: `evf_session=${session.token}` })).statusCode, 200)
    // The limit still bounds what bad credentials cost: the repeated one is refused without a query…
    const before = lookups
    for (let i = 0; i < 10; i++) assert.equal((await get(script)).statusCode, 429)
    assert.equal(lookups, before, 'a credential refused in the last minute is not looked up again')
    // …and every bad credential from that address waits, a new one and a malformed one included.
    const other = { authorization: `Bearer evf_BBBBBBBBBBBB_${'B'.repeat(43)}` }
    for (const headers of [other, { authorization: 'Bearer x' }]) {
      const res = await get(headers)
      assert.equal(res.statusCode, 429, JSON.stringify(headers))
      assert.equal(res.json().code, 'RATE_LIMITED')
    }
    assert.equal((await get({ authorization: `Bearer ${good.token}` })).statusCode, 200)
    // No credential at all is no failed authentication: it is told how to log in.
    const none = await get({})
    assert.equal(none.statusCode, 401)
    assert.match(none.json().detail, /send Authorization: Bearer/)
    // Another address is not concerned.
    assert.equal((await get(script, '10.0.0.8')).statusCode, 401)
  })

  it('logs the dashboard in the Jupyter way: a one-time URL sets an HttpOnly, SameSite=Strict cookie', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    const url = new URL(await newLoginUrl(pool, 'http://127.0.0.1:8000'))
    rememberSecret(url.searchParams.get('token')!)
    const login = await app.inject({ url: `${url.pathname}${url.search}` })
    assert.equal(login.statusCode, 303)
    assert.equal(login.headers.location, '/', 'the token leaves the address bar')
    const setCookie = String(login.headers['set-cookie'])
    assert.match(setCookie, /^evf_session=evf_\w{12}_[\w-]{43};/)
    assert.match(setCookie, /HttpOnly/)
    assert.match(setCookie, /SameSite=Strict/)
    const session = setCookie.split(';')[0]!
    rememberSecret(session.split('=')[1]!)
    assert.equal((await app.inject({ url: '/sensor-data', headers: { cookie: session } })).statusCode, 200)
    assert.equal((await app.inject({ url: '/metrics', headers: { cookie: session } })).statusCode, 403)
    // One time only; and a session cookie is not accepted as a bearer token.
    assert.equal((await app.inject({ url: `${url.pathname}${url.search}` })).statusCode, 401)
    const asBearer = await app.inject({
      url: '/sensor-data',
      headers: { authorization: `Bearer ${session.split('=')[1]}` },
    })
    assert.equal(asBearer.statusCode, 401)
  })

  it('refuses to start without auth on an address other machines reach', async () => {
    const failed = await collect(
      cli(['api'], {
        DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
        EVF_API_AUTH: 'off',
        EVF_API_HOST: '0.0.0.0',
      }),
    )
    assert.notEqual(failed.code, 0, 'evf api must not start')
    assert.match(failed.stderr, /apiAuth = "off" with apiHost = "0\.0\.0\.0".*loopback/)
  })

  it('serves HTTPS with HSTS from `evf tls self-signed`', async (t) => {
    const { config } = await isolatedConfig(t)
    const dir = await mkdtemp(join(tmpdir(), 'evf-tls-'))
    const cert = join(dir, 'api.crt')
    const key = join(dir, 'api.key')
    await evf(config.databaseUrl, 'tls', 'self-signed', '--cert', cert, '--key', key)
    assert.equal((await stat(key)).mode & 0o777, 0o600)
    const port = await freePort()
    const api = cli(['api'], {
      DATABASE_URL: config.databaseUrl,
      EVF_API_PORT: String(port),
      EVF_API_TLS_CERT: cert,
      EVF_API_TLS_KEY: key,
    })
    void collect(api) // read its output, or a full pipe would hold it
    t.after(() => api.kill('SIGTERM'))
    const ca = await readFile(cert)
    const get = () =>
      new Promise<{ status: number; hsts: string | undefined }>((resolve, reject) => {
        const req = request(
          { host: '127.0.0.1', port, path: '/health', ca, servername: 'localhost' },
          (res) => {
            res.resume()
            resolve({ status: res.statusCode ?? 0, hsts: res.headers['strict-transport-security'] as string })
          },
        )
        req.on('error', reject)
        req.end()
      })
    let answer: { status: number; hsts: string | undefined } | undefined
    await waitFor(
      'the HTTPS API',
      async () => {
        answer = await get().catch(() => undefined)
        return answer !== undefined
      },
      30_000,
    )
    assert.equal(answer!.status, 200)
    assert.match(answer!.hsts ?? '', /max-age=31536000; includeSubDomains/)
  })
})
