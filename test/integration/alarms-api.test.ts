/**
 * The alarms through the API (docs/api.md, docs/security.md): listing and history with `read`,
 * acting with `operate` (who and the comment kept), rules changed with `admin` and checked against
 * the catalog, silences, the alarms' part of /metrics and /pipeline/status, `event: alarm` on the
 * stream, and the evaluator run in the API process. Against the real PostgreSQL; alarms are seeded
 * with the db functions the evaluator itself uses.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { checkRule } from '../../src/alarms/index.ts'
import { buildApp, issueToken, newLoginUrl } from '../../src/api/index.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import {
  enqueue,
  insertEvents,
  inTransaction,
  lockAlarms,
  type Pool,
  putRule,
  writeAlarms,
} from '../../src/db/index.ts'
import { isolatedConfig, log, runCli, waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

const RULE = 'spec:paint:paint_thickness'

/** An alarm of RULE raised (NORMAL → UNACK) as the evaluator would raise it. */
async function raise(pool: Pool): Promise<void> {
  await putRule(
    pool,
    checkRule({ kind: 'spec', station: 'paint', measurement: 'paint_thickness' }, catalogFromFile()),
    'test',
  )
  await inTransaction(pool, async (client) => {
    const key = { rule_id: RULE, subject: '', station: 'paint', measurement: 'paint_thickness' }
    await lockAlarms(client, [key])
    const at = Date.now()
    await writeAlarms(client, [
      {
        rule_id: RULE,
        subject: '',
        state: 'UNACK',
        active: true,
        pendingSince: null,
        shelvedUntil: null,
        value: 1.42,
        eval: {},
        changed: true,
      },
    ])
    await insertEvents(client, [
      {
        ...key,
        kind: 'spec',
        severity: 'high',
        from_state: 'NORMAL',
        to_state: 'UNACK',
        at,
        by_whom: null,
        comment: null,
        value: 1.42,
        reason: 'raised: 1.42 > usl 1.3',
        notify: true,
      },
    ])
  })
}

async function token(pool: Pool, name: string, scopes: Parameters<typeof issueToken>[3]): Promise<string> {
  const { token } = await issueToken(pool, 'api', name, scopes)
  rememberSecret(token)
  return `Bearer ${token}`
}

describe('alarms in the API', () => {
  it('lists alarms with read, acts on them with operate, and keeps who and why in the history', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    await raise(pool)
    const reader = await token(pool, 'dashboard-tv', ['read'])
    // `evf tokens create --scope operate` makes an operator's token.
    const created = JSON.parse(
      await runCli(
        ['tokens', 'create', '--name', 'shift-lead', '--scope', 'read', '--scope', 'operate', '--json'],
        {
          DATABASE_URL: config.databaseUrl,
          EVF_LOG_LEVEL: 'warn',
        },
      ),
    ) as { token: string; scopes: string[] }
    rememberSecret(created.token)
    assert.deepEqual(created.scopes, ['read', 'operate'])
    const operator = `Bearer ${created.token}`
    const get = (url: string, authorization = reader) => app.inject({ url, headers: { authorization } })
    const post = (url: string, payload: object, authorization = operator) =>
      app.inject({ method: 'POST', url, payload, headers: { authorization } })

    const active = await get('/alarms?state=active')
    assert.equal(active.statusCode, 200)
    const [alarm] = active.json() as Record<string, unknown>[]
    assert.deepEqual(
      {
        station: alarm?.station,
        measurement: alarm?.measurement,
        rule: alarm?.rule,
        state: alarm?.state,
        severity: alarm?.severity,
      },
      { station: 'paint', measurement: 'paint_thickness', rule: RULE, state: 'UNACK', severity: 'high' },
    )
    assert.equal(alarm?.kind, 'spec')
    assert.equal(alarm?.value, 1.42)
    assert.equal((await get('/alarms')).json().length, 1, 'the default: every alarm not NORMAL')
    assert.deepEqual((await get('/alarms?state=NORMAL')).json(), [])
    assert.deepEqual((await get('/alarms?state=active&station=chassis')).json(), [])
    const bad = await get('/alarms?state=burning')
    assert.equal(bad.statusCode, 400)
    assert.match(bad.json().detail, /^state: .*active, unacknowledged, shelved, all/)

    const ack = `/alarms/${RULE}/acknowledge`
    const forbidden = await post(ack, { comment: 'seen' }, reader)
    assert.equal(forbidden.statusCode, 403)
    assert.match(forbidden.json().detail, /needs scope "operate"/)
    const done = await post(ack, { comment: 'film gauge recalibrated' })
    assert.equal(done.statusCode, 200, done.body)
    assert.deepEqual(
      { from: done.json().from, to: done.json().to, by: done.json().by },
      { from: 'UNACK', to: 'ACKED', by: 'shift-lead' },
    )
    const twice = await post(ack, { comment: 'again' })
    assert.equal(twice.statusCode, 409)
    assert.match(twice.headers['content-type'] as string, /problem\+json/)
    assert.equal(twice.json().code, 'CONFLICT')
    assert.match(twice.json().detail, /ACKED \(active, acknowledged\): acknowledge does nothing/)
    const unknown = await post('/alarms/spec:paint:nothing/acknowledge', {})
    assert.equal(unknown.statusCode, 404)
    assert.match(unknown.json().detail, /no alarm rule "spec:paint:nothing"/)

    const history = (await get(`/alarms/history?rule=${RULE}`)).json() as Record<string, unknown>[]
    assert.deepEqual(
      history.map((e) => [e.from, e.to, e.by, e.comment]),
      [
        ['UNACK', 'ACKED', 'shift-lead', 'film gauge recalibrated'],
        ['NORMAL', 'UNACK', null, null],
      ],
    )
    assert.equal(history[1]?.value, 1.42)
    const page = await get(`/alarms/history?rule=${RULE}&limit=1`)
    assert.match(page.headers.link as string, /before_id=\d+>; rel="next"/)

    // Shelving needs an expiry, at most 7 days ahead.
    const shelve = `/alarms/${RULE}/shelve`
    const noExpiry = await post(shelve, { comment: 'booth maintenance' })
    assert.equal(noExpiry.statusCode, 400)
    assert.match(noExpiry.json().detail, /a shelve needs an expiry: give `until`.*or `for_minutes`/)
    const tooLong = await post(shelve, { comment: 'booth maintenance', until: '2999-01-01T00:00:00Z' })
    assert.equal(tooLong.statusCode, 400)
    assert.match(tooLong.json().detail, /more than 7 days ahead/)
    const noComment = await post(shelve, { for_minutes: 30 })
    assert.equal(noComment.statusCode, 400)
    const shelved = await post(shelve, { comment: 'booth maintenance', for_minutes: 30 })
    assert.equal(shelved.statusCode, 200, shelved.body)
    assert.equal(shelved.json().to, 'SHELVED')
    const until = Date.parse(shelved.json().shelved_until)
    assert.ok(Math.abs(until - (Date.now() + 30 * 60_000)) < 60_000)
    assert.equal((await get('/alarms?state=shelved')).json()[0].shelved_until, new Date(until).toISOString())
    assert.deepEqual((await get('/alarms?state=active')).json(), [], 'a shelved alarm is not annunciated')
    const unshelved = await post(`/alarms/${RULE}/unshelve`, {})
    assert.equal(unshelved.json().to, 'UNACK', 'still active: to be acknowledged again')

    // The dashboard's session may act too (scope operate); it is named in the history.
    const link = new URL(await newLoginUrl(pool, 'http://127.0.0.1:8000'))
    rememberSecret(link.searchParams.get('token')!)
    const login = await app.inject({ url: `${link.pathname}${link.search}` })
    const cookie = String(login.headers['set-cookie']).split(';')[0]!
    rememberSecret(cookie.split('=')[1]!)
    const fromDashboard = await app.inject({ method: 'POST', url: ack, payload: {}, headers: { cookie } })
    assert.equal(fromDashboard.statusCode, 200, fromDashboard.body)
    assert.match(fromDashboard.json().by, /^session from dashboard login \(\w{12}\)$/)
  })

  it('reads rules with read, changes them with admin, and says what is wrong with a rule', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    await raise(pool)
    const reader = await token(pool, 'reader', ['read'])
    const admin = await token(pool, 'engineer', ['admin'])
    const put = (id: string, payload: object, authorization = admin) =>
      app.inject({ method: 'PUT', url: `/alarms/rules/${id}`, payload, headers: { authorization } })

    const rules = (await app.inject({ url: '/alarms/rules', headers: { authorization: reader } })).json()
    assert.deepEqual(
      rules.map((r: { id: string }) => r.id),
      [RULE],
    )
    const spc = { kind: 'spc', station: 'paint', measurement: 'booth_temp', params: { we: ['WE1', 'WE4'] } }
    assert.equal((await put('spc-booth', spc, reader)).statusCode, 403)
    const badKind = await put('x', { kind: 'threshold', station: 'paint' })
    assert.equal(badKind.statusCode, 400)
    assert.match(badKind.json().detail, /kind: .*spec, spc, stale, pipeline/)
    const badStation = await put('x', { kind: 'spec', station: 'welding', measurement: 'booth_temp' })
    assert.equal(badStation.statusCode, 400)
    assert.match(badStation.json().detail, /station: must be equal to one of the allowed values: .*paint/)
    const otherStation = await put('x', { kind: 'spec', station: 'chassis', measurement: 'booth_temp' })
    assert.equal(otherStation.statusCode, 400)
    assert.match(otherStation.json().detail, /measurement: "booth_temp" is not a measurement of chassis/)
    const badParams = await put('x', {
      kind: 'spc',
      station: 'paint',
      measurement: 'booth_temp',
      params: { we: ['WE9'] },
    })
    assert.equal(badParams.statusCode, 400)
    assert.match(badParams.json().detail, /params\.we\.0/)

    // A body is JSON as sent: null is not false, nor "5" a number.
    for (const wrong of [{ enabled: null }, { for_ms: '5' }, { deadband: null }]) {
      const res = await put('spc-booth', { ...spc, ...wrong })
      assert.equal(res.statusCode, 400, JSON.stringify(wrong))
      assert.match(res.json().detail, new RegExp(`^${Object.keys(wrong)[0]}: must be`))
    }

    const made = await put('spc-booth', spc)
    assert.equal(made.statusCode, 201, made.body)
    assert.deepEqual(
      { ...(made.json() as object), updated_at: undefined },
      {
        id: 'spc-booth',
        kind: 'spc',
        station: 'paint',
        measurement: 'booth_temp',
        severity: 'high',
        for_ms: 0,
        deadband: 0,
        enabled: true,
        origin: 'operator',
        updated_by: 'engineer',
        updated_at: undefined,
        params: { we: ['WE1', 'WE4'], subgroup: 5, source: 'baseline', baseline: 25, clear_after: 5 },
      },
    )
    assert.equal((await put('spc-booth', { ...spc, severity: 'low' })).json().severity, 'low')
    const del = (id: string) =>
      app.inject({ method: 'DELETE', url: `/alarms/rules/${id}`, headers: { authorization: admin } })
    assert.equal((await del('spc-booth')).statusCode, 204)
    assert.equal((await del('spc-booth')).statusCode, 404)
    await pool.query("UPDATE alarm_rules SET origin = 'catalog' WHERE id = $1", [RULE])
    const fromCatalog = await del(RULE)
    assert.equal(fromCatalog.statusCode, 409)
    assert.match(fromCatalog.json().detail, /disable it instead/)
  })

  it('makes, lists and ends silences with operate', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'on', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    const operator = await token(pool, 'maintenance', ['read', 'operate'])
    const reader = await token(pool, 'reader', ['read'])
    const post = (payload: object, authorization = operator) =>
      app.inject({ method: 'POST', url: '/alarms/silences', payload, headers: { authorization } })
    const list = async (query = '') =>
      (await app.inject({ url: `/alarms/silences${query}`, headers: { authorization: reader } })).json()

    const window = { stations: ['paint'], severities: ['high', 'medium'], comment: 'booth filter change' }
    assert.equal((await post({ ...window, duration_minutes: 60 }, reader)).statusCode, 403)
    const noEnd = await post(window)
    assert.equal(noEnd.statusCode, 400)
    assert.match(noEnd.json().detail, /needs an end: give `ends_at` or `duration_minutes`/)
    const past = await post({ ...window, ends_at: '2020-01-01T00:00:00Z', starts_at: '2019-12-31' })
    assert.equal(past.statusCode, 400)
    assert.match(past.json().detail, /is past/)
    assert.equal((await post({ ...window, stations: ['welding'], duration_minutes: 5 })).statusCode, 400)

    const made = await post({ ...window, duration_minutes: 60 })
    assert.equal(made.statusCode, 201, made.body)
    const silence = made.json()
    assert.match(silence.id, /^[0-9a-f-]{36}$/)
    assert.equal(silence.created_by, 'maintenance')
    assert.ok(Math.abs(Date.parse(silence.ends_at) - Date.parse(silence.starts_at) - 3_600_000) < 1000)
    const planned = await post({
      ...window,
      starts_at: new Date(Date.now() + 86_400_000).toISOString(),
      duration_minutes: 120,
    })
    assert.equal(planned.statusCode, 201, 'a maintenance window planned ahead')
    assert.deepEqual(
      (await list()).map((s: { id: string }) => s.id).sort(),
      [silence.id, planned.json().id].sort(),
    )

    const end = (id: string) =>
      app.inject({ method: 'DELETE', url: `/alarms/silences/${id}`, headers: { authorization: operator } })
    assert.equal((await end(silence.id)).statusCode, 204)
    assert.equal((await end(silence.id)).statusCode, 404, 'already ended')
    assert.deepEqual(
      (await list()).map((s: { id: string }) => s.id),
      [planned.json().id],
    )
    const ended = (await list('?all=true')).find((s: { id: string }) => s.id === silence.id)
    assert.ok(ended.expired_at)
  })

  it('reports alarms and deliveries in /metrics and /pipeline/status, and streams them as event: alarm', async (t) => {
    const { config, pool } = await isolatedConfig(t)
    // The evaluator runs in this process, as `evf api` runs it (EVF_ALARM_EVALUATOR=api).
    const { startAlarms } = await import('../../src/alarms/index.ts')
    const app = await buildApp({
      pool,
      logger: false,
      auth: 'on',
      config: { apiRateLimit: 0 },
      alarms: (catalog) => startAlarms(config, { pool, log, catalog }),
    })
    // Closed before the database is dropped (the after-hooks run in order), so that the evaluator
    // stops rather than lose its connection.
    let closed = false
    const close = async () => {
      if (!closed) await app.close()
      closed = true
    }
    t.after(close)
    await app.listen({ host: '127.0.0.1', port: 0 })
    const base = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`
    const metricsToken = await token(pool, 'prometheus', ['metrics'])
    const reader = await token(pool, 'reader', ['read'])
    const operator = await token(pool, 'operator', ['operate'])

    // The evaluator leads (one process here) and seeds the catalog's rules.
    const metrics = async () =>
      (await app.inject({ url: '/metrics', headers: { authorization: metricsToken } })).body
    await waitFor(
      'the evaluator to lead',
      async () => /^evf_alarm_evaluator_leader 1$/m.test(await metrics()),
      20_000,
    )
    await waitFor(
      'the catalog rules',
      async () => (await pool.query('SELECT 1 FROM alarm_rules')).rowCount! > 10,
      10_000,
    )

    // The stream tells of the alarms at once, then of each change.
    const res = await fetch(`${base}/sensor-data/stream`, { headers: { authorization: reader } })
    assert.equal(res.status, 200)
    const reader$ = res.body!.getReader()
    let buffer = ''
    /** Reads `event: alarm`s until one lists these alarms (rule, state). */
    const untilAlarms = async (expected: [string, string][]): Promise<void> => {
      for (;;) {
        const m = /^event: alarm\ndata: (.*)\n\n/m.exec(buffer)
        if (m) {
          buffer = buffer.slice(m.index + m[0].length)
          const alarms = JSON.parse(m[1]!) as { rule: string; state: string }[]
          if (JSON.stringify(alarms.map((a) => [a.rule, a.state])) === JSON.stringify(expected)) return
          continue
        }
        const { value, done } = await reader$.read()
        if (done) throw new Error(`the stream ended before the alarms were ${JSON.stringify(expected)}`)
        buffer += new TextDecoder().decode(value)
      }
    }
    await untilAlarms([])
    await raise(pool)
    await untilAlarms([[RULE, 'UNACK']])
    const ack = await app.inject({
      method: 'POST',
      url: `/alarms/${RULE}/acknowledge`,
      payload: { comment: 'on it' },
      headers: { authorization: operator },
    })
    assert.equal(ack.statusCode, 200, ack.body)
    await untilAlarms([[RULE, 'ACKED']])

    // A message waiting for the e-mail receiver.
    await inTransaction(pool, (client) =>
      enqueue(client, [
        { key: 'k1', receiver: 'email', kind: 'group', station: 'paint', notices: 1, payload: {} },
      ]),
    )
    const text = await metrics()
    assert.match(text, /^evf_alarms\{state="ACKED",severity="high"\} 1$/m)
    assert.match(text, /^evf_alarms\{state="UNACK",severity="critical"\} 0$/m)
    assert.match(text, /^evf_alarm_notifications\{receiver="email",status="pending"\} 1$/m)
    assert.match(text, /^evf_alarm_notification_oldest_pending_seconds\{receiver="email"\} [0-9.e-]+$/m)
    const status = (await app.inject({ url: '/pipeline/status', headers: { authorization: reader } })).json()
    assert.ok(
      status.alarms.counts.some(
        (c: { state: string; severity: string; count: number }) =>
          c.state === 'ACKED' && c.severity === 'high' && c.count === 1,
      ),
    )
    assert.deepEqual(
      status.alarms.deliveries.map((d: { receiver: string; status: string; messages: number }) => [
        d.receiver,
        d.status,
        d.messages,
      ]),
      [['email', 'pending', 1]],
    )
    assert.equal(status.alarms.evaluator.leader, true)
    await reader$.cancel()
    await close()
  })

  it('says when alarms are no longer evaluated: /ready degraded, /metrics and /pipeline/status', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false, auth: 'off', config: { apiRateLimit: 0 } })
    t.after(() => app.close())
    type ReadyBody = { status: string; alarms: { evaluating: boolean; heartbeat_age_sec: number | null } }
    const ready = async () => (await app.inject({ url: '/ready' })).json<ReadyBody>()
    // No evaluator ever ran (a deployment without alarms): ready, not evaluating.
    assert.deepEqual([(await ready()).status, (await ready()).alarms.evaluating], ['ready', false])
    // One ran, and its last tick is a minute old: nobody would be told of a drift.
    await pool.query(`UPDATE alarm_leader SET holder = 'api:1', heartbeat_at = now() - interval '60 seconds'`)
    const stale = await ready()
    assert.equal(stale.status, 'degraded')
    assert.equal(stale.alarms.evaluating, false)
    assert.ok(stale.alarms.heartbeat_age_sec! >= 60)
    const metrics = (await app.inject({ url: '/metrics' })).body
    assert.match(metrics, /^evf_alarm_evaluator_heartbeat_age_seconds 6\d/m)
    const status = (await app.inject({ url: '/pipeline/status' })).json<{
      alarms: { evaluation: { evaluating: boolean; holder: string } }
    }>()
    assert.deepEqual(status.alarms.evaluation.holder, 'api:1')
    // Ticking again: ready.
    await pool.query('UPDATE alarm_leader SET heartbeat_at = now()')
    assert.deepEqual([(await ready()).status, (await ready()).alarms.evaluating], ['ready', true])
  })
})
