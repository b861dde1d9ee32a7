// @alone: the whole stack, with a drifting paint booth, an SMTP server and a webhook receiver
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import pg from 'pg'
import { newLoginUrl } from '../../src/api/tokens.ts'
import { readKafkaSecrets } from '../../src/kafka/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { receiver, smtp } from '../alarm-receivers.ts'
import { runCli, sleep, waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'
import { type GroupChild, killGroup, stackUp } from './group.ts'

const dataDir = join(repoRoot, '.test-stack', 'e2e-alarms')
const SECRET = 'e2e-webhook-secret-0123456789'
const RULE = 'spec:paint:booth_temp'

interface Payload {
  kind: string
  station: string | null
  alarms: { station: string; measurement: string; rule: string; to: string }[]
}

describe('a process drifting on a running plant', () => {
  let stack: GroupChild
  let db: pg.Client
  let base: string
  let cookie: string
  let hook: Awaited<ReturnType<typeof receiver>>
  let mailbox: Awaited<ReturnType<typeof smtp>>
  const api = async <T>(path: string, init: RequestInit = {}): Promise<T> => {
    const res = await fetch(`${base}${path}`, {
      ...init,
      headers: { cookie, ...(init.body ? { 'content-type': 'application/json' } : {}) },
    })
    if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    return (await res.json()) as T
  }
  const mailPayloads = () => mailbox.mails.map((m) => m.raw)
  const hooks = () => hook.got.map((g) => JSON.parse(g.body) as Payload)

  before(async () => {
    await rm(dataDir, { recursive: true, force: true })
    hook = await receiver([])
    mailbox = await smtp()
    const [apiPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort()]
    stack = stackUp(
      [
        '--data-dir',
        dataDir,
        '--kafka-port',
        String(kafkaPort),
        '--kafka-controller-port',
        String(controllerPort),
        '--api-port',
        String(apiPort),
      ],
      {
        EVF_SIM_INTERVAL_MS: '250',
        EVF_SIM_SENSORS_PER_STATION: '1',
        EVF_SIM_FAULT_RATE: '0',
        // booth_temp's noise is 0.5 °C: 16σ puts it at 30 °C, past its USL of 26 on every reading.
        EVF_SIM_FAULT: 'mean-shift:paint.booth_temp:16',
        EVF_SMTP_URL: `smtp://127.0.0.1:${mailbox.port}`,
        EVF_ALARM_EMAIL_TO: 'shift-lead@plant.example',
        EVF_ALARM_WEBHOOK_URL: hook.url,
        EVF_ALARM_WEBHOOK_SECRET: SECRET,
        EVF_ALARM_GROUP_WAIT_MS: '2000',
        EVF_ALARM_REPEAT_MS: '10000',
      },
    )
    await waitFor(
      'the stack banner',
      async () => (stack.output().includes('pipeline is up') ? true : undefined),
      180_000,
      {
        everyMs: 500,
        detail: () => stack.output().slice(-4000),
      },
    )
    for (const password of Object.values(readKafkaSecrets(dataDir) ?? {})) rememberSecret(password)
    rememberSecret(SECRET)
    base = `http://127.0.0.1:${apiPort}`
    const { databaseUrl } = JSON.parse(readFileSync(join(dataDir, 'stack.json'), 'utf8')) as {
      databaseUrl: string
    }
    db = new pg.Client({ connectionString: databaseUrl })
    await db.connect()
    const login = await fetch(await newLoginUrl(db as unknown as pg.Pool, base), { redirect: 'manual' })
    cookie = login.headers.get('set-cookie')!.split(';')[0]!
    rememberSecret(cookie.split('=')[1]!)
  })
  after(async () => {
    await db?.end()
    killGroup(stack?.child.pid, 'SIGINT')
    const timer = setTimeout(() => killGroup(stack?.child.pid, 'SIGKILL'), 60_000)
    await stack?.exited
    clearTimeout(timer)
    hook?.close()
    await mailbox?.close()
  })

  it('reaches the mailbox and the webhook once, repeats until acknowledged, and keeps the whole story', async () => {
    await waitFor(
      'the first mail and webhook',
      async () => mailbox.mails.length > 0 && hook.got.length > 0,
      120_000,
      {
        everyMs: 250,
        detail: () => stack.output().slice(-3000),
      },
    )
    const first = hook.got[0]!
    const expected = `sha256=${createHmac('sha256', SECRET).update(`${first.headers['x-evf-timestamp']}.${first.body}`).digest('hex')}`
    assert.equal(first.headers['x-evf-signature'], expected, 'signed with the shared secret')
    assert.deepEqual(
      hooks()[0]!.alarms.map((a) => [a.station, a.measurement, a.rule, a.to]),
      [['paint', 'booth_temp', RULE, 'UNACK']],
    )
    assert.equal(mailbox.mails.length, 1, 'one mail')
    assert.deepEqual(mailbox.mails[0]!.to, ['shift-lead@plant.example'])
    assert.match(mailPayloads()[0]!, /booth_temp/)
    const active =
      await api<{ station: string; measurement: string; rule: string; state: string; severity: string }[]>(
        '/alarms?state=active',
      )
    assert.deepEqual(
      active.map((a) => [a.station, a.measurement, a.rule, a.state, a.severity]),
      [['paint', 'booth_temp', RULE, 'UNACK', 'high']],
    )

    // Unacknowledged, it is told again after the repeat interval (10 s); acknowledged, no more.
    await waitFor('a repeat', async () => hooks().some((p) => p.kind === 'repeat'), 30_000, { everyMs: 250 })
    await api(`/alarms/${RULE}/acknowledge`, {
      method: 'POST',
      body: JSON.stringify({ comment: 'booth heater checked' }),
    })
    const told = hook.got.length
    const mailed = mailbox.mails.length
    await sleep(15_000)
    assert.equal(
      hook.got.length,
      told,
      `no webhook after the acknowledgement: ${JSON.stringify(hooks().map((p) => [p.kind, p.alarms.map((a) => `${a.rule} ${a.to}`)]))}`,
    )
    assert.equal(mailbox.mails.length, mailed, 'no mail after the acknowledgement')
    assert.equal(hooks().filter((p) => p.kind === 'group').length, 1, 'the raise was told once')

    // A silence on paint: a new paint alarm is recorded, not sent.
    await api('/alarms/silences', {
      method: 'POST',
      body: JSON.stringify({ stations: ['paint'], duration_minutes: 30, comment: 'booth maintenance' }),
    })
    // The engineer's side: rules are changed with the CLI (or the API with an admin token).
    const setRule = (rule: object) =>
      runCli(['alarms', 'rules', 'set', JSON.stringify(rule)], { EVF_DATA_DIR: dataDir })
    await setRule({
      kind: 'spc',
      station: 'paint',
      measurement: 'booth_temp',
      params: { we: ['WE1'], subgroup: 1, source: 'catalog' },
    })
    const silenced = await waitFor(
      'the silenced raise in the history',
      async () => {
        const { rows } = await db.query<{ silenced_by: string | null }>(
          `SELECT silenced_by FROM alarm_events WHERE rule_id = 'spc:paint:booth_temp' AND to_state = 'UNACK' AND routed_at IS NOT NULL`,
        )
        return rows[0]
      },
      30_000,
    )
    assert.ok(silenced.silenced_by, 'recorded with the silence that kept it')

    // A burst on one station: three chassis rules trip together, one message tells of them all.
    const before = hook.got.length
    await Promise.all(
      ['bolt_torque', 'weld_current', 'frame_alignment'].map((m) =>
        setRule({
          id: `burst:chassis:${m}`,
          kind: 'spc',
          station: 'chassis',
          measurement: m,
          severity: 'critical',
          params: { we: ['WE1'], subgroup: 1, source: 'fixed', centre: -1000, sigma: 1 },
        }),
      ),
    )
    await waitFor('the burst told', async () => hook.got.length > before, 30_000, { everyMs: 250 })
    await sleep(4_000)
    const burst = hooks().slice(before)
    assert.equal(burst.length, 1, 'one message for the burst')
    assert.equal(burst[0]!.station, 'chassis')
    assert.equal(burst[0]!.alarms.length, 3)

    // The story: raised, repeated, acknowledged by the dashboard's session, silenced, grouped.
    const history = await api<{ rule: string; to: string; by: string | null; comment: string | null }[]>(
      `/alarms/history?rule=${RULE}`,
    )
    const acked = history.find((h) => h.to === 'ACKED')
    assert.equal(acked?.comment, 'booth heater checked')
    assert.ok(acked?.by, 'who acknowledged')
  })
})
