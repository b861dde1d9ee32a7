import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { describe, it } from 'node:test'
import { act, startAlarms } from '../../src/alarms/index.ts'
import { catalogRules } from '../../src/alarms/rules.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { listRules, seedRules } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { receiver, smtp } from '../alarm-receivers.ts'
import { count, isolatedConfig, log, produceRaw, sleep, waitFor } from '../helpers.ts'

const SECRET = 'a-webhook-secret-for-tests'

const paint = (ts: number, temp: number) =>
  JSON.stringify({
    station: 'paint',
    timestamp: ts,
    booth_temp: temp,
    booth_humidity: 60,
    paint_thickness: 1.15,
  })

describe('alarms on the commit stream', () => {
  it('raises a drifting booth once with two evaluators, tells the webhook and the mailbox once each, and resumes after a restart', async (t) => {
    // The SMTP server is down when the alarm is raised; it comes up later.
    const probe = await smtp()
    await probe.close()
    const hook = await receiver([500])
    t.after(() => hook.close())
    const { config, pool } = await isolatedConfig(t, {
      smtpUrl: `smtp://127.0.0.1:${probe.port}`,
      alarmEmailTo: 'shift@plant.example',
      alarmWebhookUrl: hook.url,
      alarmWebhookSecret: SECRET,
      alarmGroupWaitMs: 500,
    })
    // Only the booth's spec rule, so that nothing else speaks.
    const catalog = catalogFromFile()
    await seedRules(
      pool,
      catalogRules(catalog).map((r) => ({ ...r, enabled: r.id === 'spec:paint:booth_temp' })),
    )
    const deps = { pool, log, catalog: () => catalog }
    const a = startAlarms(config, deps)
    const b = startAlarms(config, deps)
    t.after(async () => {
      await a.close()
      await b.close()
    })
    await waitFor('a leader', async () => a.evaluator.leading || b.evaluator.leading, 20_000)
    await sleep(500)
    assert.equal(Number(a.evaluator.leading) + Number(b.evaluator.leading), 1, 'one leader')

    const now = Date.now() / 1000
    const topic = `${config.topicPrefix}paint`
    await produceRaw(
      config,
      [22, 23, 27.5, 28, 27.9].map((v, i) => ({ topic, key: 'p', value: paint(now + i * 0.01, v) })),
    )
    await runBounded(config, pool, log)
    await waitFor(
      'the alarm raised',
      async () => (await count(pool, `SELECT count(*) AS n FROM alarms WHERE state = 'UNACK'`)) === 1,
      10_000,
    )
    const raised = await pool.query<{ reason: string; value: number }>(
      `SELECT reason, value FROM alarm_events WHERE rule_id = 'spec:paint:booth_temp' AND to_state = 'UNACK'`,
    )
    assert.equal(raised.rows.length, 1, 'raised once, though two evaluators run')
    assert.match(raised.rows[0]!.reason, /above USL 26/)
    assert.equal(raised.rows[0]!.value, 27.5)

    // The webhook: refused once (500), then taken; signed; the same key both times.
    await waitFor('the webhook taken', async () => hook.got.some((g) => g.status === 200), 15_000)
    const body = hook.got[0]!.body
    const ts = String(hook.got[0]!.headers['x-evf-timestamp'])
    const expected = `sha256=${createHmac('sha256', SECRET).update(`${ts}.${body}`).digest('hex')}`
    assert.equal(hook.got[0]!.headers['x-evf-signature'], expected)
    assert.equal(hook.got[0]!.headers['idempotency-key'], hook.got[1]!.headers['idempotency-key'])
    const payload = JSON.parse(body) as {
      alarms: { station: string; measurement: string; severity: string }[]
    }
    assert.deepEqual(
      payload.alarms.map((x) => [x.station, x.measurement, x.severity]),
      [['paint', 'booth_temp', 'high']],
    )

    // The mailbox comes up: the mail arrives, once.
    const mailbox = await smtp(probe.port)
    t.after(() => mailbox.close())
    await waitFor('the mail', async () => mailbox.mails.length > 0, 30_000)
    await sleep(3_000)
    assert.equal(mailbox.mails.length, 1, 'one mail')
    assert.deepEqual(mailbox.mails[0]!.to, ['shift@plant.example'])
    assert.match(mailbox.mails[0]!.raw, /booth_temp/)
    assert.equal(
      hook.got.filter((g) => g.status === 200).length,
      1,
      'a webhook answered 200 is not sent again',
    )

    // Acknowledged: who and why are in the history.
    const [rule] = (await listRules(pool)).filter((r) => r.id === 'spec:paint:booth_temp')
    assert.deepEqual(
      await act(pool, rule!, { rule: rule!.id, action: 'acknowledge', by: 'ana', comment: 'gun cleaned' }),
      {
        from: 'UNACK',
        to: 'ACKED',
      },
    )
    // A restart: the readings back in spec are evaluated by the next leader from the cursor; the
    // catalog's spec rule clears once they have stayed inside for its off-delay (10 s of reading time).
    await a.close()
    await b.close()
    await produceRaw(
      config,
      [22, 22.1, 21.9].map((v, i) => ({ topic, key: 'p', value: paint(now + 1 + i * 6, v) })),
    )
    await runBounded(config, pool, log)
    const c = startAlarms(config, deps)
    t.after(() => c.close())
    await waitFor(
      'the alarm cleared after the restart',
      async () =>
        (await count(
          pool,
          `SELECT count(*) AS n FROM alarms WHERE state = 'NORMAL' AND rule_id = 'spec:paint:booth_temp'`,
        )) === 1,
      20_000,
    )
    const history = await pool.query<{ from_state: string; to_state: string; by_whom: string | null }>(
      `SELECT from_state, to_state, by_whom FROM alarm_events WHERE rule_id = 'spec:paint:booth_temp' ORDER BY id`,
    )
    assert.deepEqual(
      history.rows.map((r) => `${r.from_state}→${r.to_state}${r.by_whom ? ` by ${r.by_whom}` : ''}`),
      ['NORMAL→UNACK', 'UNACK→ACKED by ana', 'ACKED→NORMAL'],
    )
    // The history, as BI tools read it.
    const bi = await pool.query<{ to_state: string; by_whom: string | null; comment: string | null }>(
      `SELECT to_state, by_whom, comment FROM bi.alarm_history WHERE rule = 'spec:paint:booth_temp' AND to_state = 'ACKED'`,
    )
    assert.deepEqual(bi.rows, [{ to_state: 'ACKED', by_whom: 'ana', comment: 'gun cleaned' }])
    await c.close()
  })
})
