/**
 * Alarm notifications as they leave the plant: the payload and its e-mail (pure), the signed
 * webhook against a real HTTP server and the mailer against a real SMTP server, both in this
 * process on loopback — nothing mocked, so a header, a signature or an SMTP reply is what a
 * receiver would really see.
 */
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, createServer as createTcpServer, type Server as TcpServer } from 'node:net'
import { describe, it, type TestContext } from 'node:test'
import { SMTPServer, type SMTPServerOptions } from 'smtp-server'
import { createMailer, messageIdOf, smtpOptions } from '../../src/alarms/email.ts'
import {
  buildPayload,
  type Deliverable,
  escapeHtml,
  type NotificationPayload,
  renderEmail,
} from '../../src/alarms/payload.ts'
import type { Notice } from '../../src/alarms/routing.ts'
import { sendWebhook, sign, verifySignature } from '../../src/alarms/webhook.ts'

const AT = Date.UTC(2026, 10, 28, 23, 58, 49)

const notice = (over: Partial<Notice> = {}): Notice => ({
  id: 41,
  alarm: 'paint.booth_temp.spec',
  station: 'paint',
  measurement: 'booth_temp',
  rule: 'spec',
  severity: 'high',
  from: 'NORMAL',
  to: 'UNACK',
  value: 31.4,
  at: AT,
  ...over,
})

const group = (notices: Notice[], over: Partial<Deliverable> = {}): Deliverable => ({
  receiver: 'paint-oncall',
  kind: 'group',
  station: 'paint',
  notices,
  withheld: 0,
  ...over,
})

const META = { key: 'evf-msg-7', sentAt: AT + 30_000, dashboardUrl: 'https://evf.plant.example/alarms' }

const payload = (): NotificationPayload =>
  buildPayload(
    group([notice(), notice({ id: 42, measurement: 'booth_humidity', severity: 'critical' })]),
    META,
  )

describe('the notification payload', () => {
  it('is versioned plain JSON with one item per transition, keyed by the transition', () => {
    const p = payload()
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p, 'JSON-able: nothing lost in a round trip')
    assert.equal(p.version, 1)
    assert.equal(p.key, 'evf-msg-7')
    assert.equal(p.kind, 'group')
    assert.equal(p.receiver, 'paint-oncall')
    assert.equal(p.station, 'paint')
    assert.equal(p.severity, 'critical')
    assert.equal(p.withheld, 0)
    assert.equal(p.sentAt, '2026-11-28T23:59:19.000Z')
    assert.equal(p.dashboardUrl, 'https://evf.plant.example/alarms')
    assert.deepEqual(p.alarms[0], {
      key: 'evf-transition-41',
      alarm: 'paint.booth_temp.spec',
      station: 'paint',
      measurement: 'booth_temp',
      rule: 'spec',
      severity: 'high',
      from: 'NORMAL',
      to: 'UNACK',
      value: 31.4,
      at: '2026-11-28T23:58:49.000Z',
    })
    assert.equal(p.alarms[1]?.key, 'evf-transition-42')
    assert.equal(buildPayload(group([]), { key: 'k', sentAt: AT }).dashboardUrl, null)
  })

  it('takes a repeat: a reminder of alarms still unacknowledged', () => {
    const p = buildPayload(group([notice()], { kind: 'repeat' }), META)
    assert.equal(p.kind, 'repeat')
    const mail = renderEmail(p)
    assert.equal(mail.subject, '[EVF HIGH] paint: reminder, 1 alarm still unacknowledged')
    assert.match(mail.text, /still unacknowledged/)
  })
})

describe('the e-mail of a payload', () => {
  it('tags the subject with the highest severity and counts what happened', () => {
    const mail = renderEmail(payload())
    assert.equal(mail.subject, '[EVF CRITICAL] paint: 2 alarms raised')
    assert.equal(mail.key, 'evf-msg-7')
    const low = renderEmail(
      buildPayload(
        group([
          notice({ severity: 'low' }),
          notice({ id: 2, severity: 'medium', from: 'ACKED', to: 'NORMAL' }),
          notice({ id: 3, severity: 'low' }),
        ]),
        META,
      ),
    )
    assert.equal(low.subject, '[EVF MEDIUM] paint: 2 alarms raised, 1 cleared')
  })

  it('says a flood summary plainly: how many were held back, and that these are the first', () => {
    const held = Array.from({ length: 20 }, (_, i) =>
      notice({ id: 100 + i, station: i % 2 ? 'paint' : 'battery' }),
    )
    const p = buildPayload(
      { receiver: 'plant-oncall', kind: 'flood-summary', station: null, notices: held, withheld: 57 },
      META,
    )
    const mail = renderEmail(p)
    assert.equal(mail.subject, '[EVF HIGH] ALARM FLOOD: 57 notifications held back for plant-oncall')
    assert.match(mail.text, /57 notifications held back; the first 20 are listed below/)
    assert.match(mail.text, /See the dashboard for all of them/)
    assert.equal(p.station, null)
    assert.equal(p.alarms.length, 20)
  })

  it('a plain-text body an operator reads on a phone: station, measurement, value, time, link', () => {
    const { text } = renderEmail(payload())
    assert.match(text, /^paint: 2 alarms raised\n/)
    assert.match(text, /CRITICAL {2}paint \/ booth_humidity: raised/)
    assert.match(text, /value 31\.4, 2026-11-28 23:58:49 UTC/)
    assert.match(text, /Dashboard: https:\/\/evf\.plant\.example\/alarms/)
    for (const line of text.split('\n')) assert.ok(line.length <= 110, `short lines: ${line}`)
  })

  it('escapes everything in the HTML body, links only to web addresses, keeps the subject one line', () => {
    const evil = '<script>alert("x")</script> & \'q\''
    const p = buildPayload(
      group([notice({ station: evil, measurement: '<b>temp</b>', alarm: 'a"b', rule: '<i>' })], {
        station: `${evil}\r\nBcc: victim@example.com`,
      }),
      { ...META, dashboardUrl: 'javascript:alert(1)' },
    )
    const { html, subject, text } = renderEmail(p)
    assert.ok(!html.includes('<script'), html)
    assert.ok(!html.includes('<b>temp'), html)
    assert.ok(!html.includes('<i>'), html)
    assert.ok(html.includes(escapeHtml(evil)))
    assert.ok(html.includes('&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62; &#38; &#39;q&#39;'))
    assert.ok(!html.includes('href="javascript'), 'a javascript: URL is not a link')
    assert.ok(!/[\r\n]/.test(subject), subject)
    assert.match(text, /<script>/, 'the text body is text: nothing to escape there')
    const linked = renderEmail(
      buildPayload(group([notice()]), { ...META, dashboardUrl: 'https://x/?a=1&b="2"' }),
    )
    assert.ok(linked.html.includes('<a href="https://x/?a=1&#38;b=&#34;2&#34;">'))
  })
})

// --- webhooks, against a real HTTP server ----------------------------------------------------

interface Received {
  headers: IncomingMessage['headers']
  body: Buffer
}

/** An HTTP server on loopback, answering with `handler`; closed with the test. */
async function httpServer(
  t: TestContext,
  handler: (req: IncomingMessage, res: ServerResponse, body: Buffer) => void,
): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      received.push({ headers: req.headers, body })
      handler(req, res, body)
    })
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.after(async () => {
    server.closeAllConnections()
    await new Promise((r) => server.close(r))
  })
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/evf?token=s3cret`,
    received,
  }
}

/** A loopback port nothing listens on (it did a moment ago). */
async function closedPort(): Promise<number> {
  const s: TcpServer = createTcpServer()
  s.listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address() as AddressInfo
  await new Promise((r) => s.close(r))
  return port
}

const SECRET = 'whsec_test_0123456789'

describe('sendWebhook, to a real HTTP server', () => {
  it('POSTs the payload signed over exactly the bytes sent, with the idempotency key', async (t) => {
    const { url, received } = await httpServer(t, (_req, res) => res.writeHead(204).end())
    const p = payload()
    const before = Math.floor(Date.now() / 1000)
    assert.deepEqual(await sendWebhook(url, SECRET, p, { key: 'evf-msg-7', timeoutMs: 5_000 }), {
      status: 204,
    })
    assert.equal(received.length, 1)
    const { headers, body } = received[0]!
    assert.equal(headers['content-type'], 'application/json')
    assert.equal(headers['idempotency-key'], 'evf-msg-7')
    assert.equal(headers['user-agent'], 'evf-alarms/1')
    assert.equal(Number(headers['content-length']), body.length)
    assert.deepEqual(JSON.parse(body.toString('utf8')), p)
    const ts = headers['x-evf-timestamp'] as string
    assert.match(ts, /^\d+$/)
    assert.ok(Number(ts) >= before && Number(ts) <= before + 5, 'unix seconds, now')
    const signature = headers['x-evf-signature'] as string
    // Independently of the module: HMAC-SHA256(secret, timestamp + "." + raw body).
    const expected = createHmac('sha256', SECRET).update(`${ts}.`).update(body).digest('hex')
    assert.equal(signature, `sha256=${expected}`)
    assert.equal(verifySignature(SECRET, ts, body, signature), true)
    assert.equal(verifySignature(SECRET, ts, body.toString('utf8'), signature), true, 'as a string too')
  })

  it('verifySignature rejects another body, secret or timestamp, a replay, a malformed header', () => {
    const body = Buffer.from(JSON.stringify(payload()))
    const now = 1_800_000_000_000
    const ts = now / 1000
    const good = sign(SECRET, ts, body)
    assert.equal(verifySignature(SECRET, ts, body, good, { now }), true)
    assert.equal(
      verifySignature(SECRET, String(ts), body, good.toUpperCase().replace('SHA256', 'sha256'), { now }),
      true,
    )
    const tampered = Buffer.from(body)
    tampered[10] = tampered[10]! ^ 1
    assert.equal(verifySignature(SECRET, ts, tampered, good, { now }), false, 'another body')
    assert.equal(verifySignature('whsec_other', ts, body, good, { now }), false, 'another secret')
    assert.equal(verifySignature(SECRET, ts + 1, body, good, { now }), false, 'another timestamp')
    assert.equal(
      verifySignature(SECRET, ts, body, good, { now: now + 301_000 }),
      false,
      'a replay, 301 s later',
    )
    assert.equal(verifySignature(SECRET, ts, body, good, { now: now + 299_000 }), true, 'within tolerance')
    assert.equal(verifySignature(SECRET, ts, body, good, { now: now + 61_000, toleranceSec: 60 }), false)
    for (const bad of [undefined, '', 'sha256=', good.slice(0, -2), `sha1=${good.slice(7)}`, `${good}00`])
      assert.equal(verifySignature(SECRET, ts, body, bad, { now }), false, `header ${bad}`)
    for (const badTs of [undefined, '', '12abc', '-1', '1.5'])
      assert.equal(verifySignature(SECRET, badTs, body, good, { now }), false, `timestamp ${badTs}`)
  })

  it('a receiver answering 500 makes it throw with the status and the first bytes of the body', async (t) => {
    const { url } = await httpServer(t, (_req, res) =>
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`database\non fire ${'x'.repeat(5_000)}`),
    )
    await assert.rejects(
      sendWebhook(url, SECRET, payload(), { key: 'k', timeoutMs: 5_000 }),
      (err: Error) => {
        assert.match(
          err.message,
          /^webhook http:\/\/127\.0\.0\.1:\d+: HTTP 500 Internal Server Error: database on fire x+…$/,
        )
        assert.ok(err.message.length < 300, 'only the first bytes')
        assert.ok(!err.message.includes('s3cret'), 'the URL’s path and query (often a secret) are not quoted')
        return true
      },
    )
  })

  it('anything but a 2xx fails: a 404 with no body, a redirect (not followed)', async (t) => {
    const { url } = await httpServer(t, (req, res) =>
      req.url?.startsWith('/moved')
        ? res.writeHead(404).end()
        : res.writeHead(302, { location: '/moved' }).end(),
    )
    await assert.rejects(
      sendWebhook(url, SECRET, payload(), { key: 'k', timeoutMs: 5_000 }),
      /HTTP 302 Found/,
    )
    await assert.rejects(
      sendWebhook(`${new URL(url).origin}/moved`, SECRET, payload(), { key: 'k', timeoutMs: 5_000 }),
      /HTTP 404 Not Found \(empty body\)/,
    )
  })

  it('a receiver that never answers makes it time out', async (t) => {
    const { url, received } = await httpServer(t, () => {})
    const started = Date.now()
    await assert.rejects(
      sendWebhook(url, SECRET, payload(), { key: 'k', timeoutMs: 300 }),
      /^Error: webhook http:\/\/127\.0\.0\.1:\d+: no answer within 300 ms \(timeout\)$/,
    )
    assert.ok(Date.now() - started < 3_000)
    assert.equal(received.length, 1, 'the request arrived; the answer never came')
  })

  it('a refused connection throws, saying so', async () => {
    const port = await closedPort()
    await assert.rejects(
      sendWebhook(`http://127.0.0.1:${port}/hook`, SECRET, payload(), { key: 'k', timeoutMs: 5_000 }),
      new RegExp(`^Error: webhook http://127\\.0\\.0\\.1:${port}: connection refused \\(.*ECONNREFUSED`),
    )
  })
})

// --- e-mail, against a real SMTP server ---------------------------------------------------

interface Mail {
  from: string
  to: string[]
  raw: string
}

/** An SMTP server on loopback (no TLS, login optional); closed with the test. */
async function smtpServer(
  t: TestContext,
  options: SMTPServerOptions = {},
): Promise<{ port: number; mails: Mail[] }> {
  const mails: Mail[] = []
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    closeTimeout: 1_000,
    onData(stream, session, callback) {
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.on('end', () => {
        mails.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        })
        callback()
      })
    },
    ...options,
  })
  server.listen(0, '127.0.0.1')
  await once(server.server, 'listening')
  t.after(() => new Promise<void>((r) => server.close(() => r())))
  return { port: (server.server.address() as AddressInfo).port, mails }
}

/** A header of a raw message, unfolded. */
function header(raw: string, name: string): string | undefined {
  const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ')
  return new RegExp(`^${name}: (.*)$`, 'im').exec(head)?.[1]
}

/** The decoded body of the part of type `type` in a multipart message. */
function part(raw: string, type: string): string {
  const start = raw.search(new RegExp(`^Content-Type: ${type}`, 'im'))
  assert.ok(start >= 0, `a ${type} part`)
  const rest = raw.slice(start)
  const headers = rest.slice(0, rest.indexOf('\r\n\r\n'))
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(raw)?.[1]
  assert.ok(boundary, 'a multipart message')
  const body = rest.slice(headers.length + 4, rest.indexOf(`\r\n--${boundary}`))
  const encoding = /^Content-Transfer-Encoding: (\S+)/im.exec(headers)?.[1]?.toLowerCase()
  if (encoding === 'base64') return Buffer.from(body, 'base64').toString('utf8')
  if (encoding === 'quoted-printable') {
    const bytes = body.replace(/=\r\n/g, '').replace(/=([0-9A-F]{2})/gi, (_, h: string) => `%${h}`)
    return decodeURIComponent(bytes.replace(/%(?![0-9A-F]{2})/gi, '%25'))
  }
  return body
}

const FROM = '"EVF alarms" <alarms@plant.example>'

describe('createMailer, to a real SMTP server', () => {
  it('delivers to every recipient: subject, idempotency header and Message-ID, text and HTML', async (t) => {
    const { port, mails } = await smtpServer(t)
    const mailer = createMailer(`smtp://127.0.0.1:${port}`, { from: FROM, timeoutMs: 5_000 })
    t.after(() => mailer.close())
    const rendered = renderEmail(payload())
    const sent = await mailer.send(['ana@plant.example', 'ben@plant.example'], rendered)
    assert.equal(sent.messageId, '<evf-msg-7@plant.example>')
    assert.deepEqual(sent.rejected, [])
    assert.equal(mails.length, 1)
    const mail = mails[0]!
    assert.equal(mail.from, 'alarms@plant.example')
    assert.deepEqual(mail.to, ['ana@plant.example', 'ben@plant.example'])
    assert.equal(header(mail.raw, 'Subject'), '[EVF CRITICAL] paint: 2 alarms raised')
    assert.equal(header(mail.raw, 'X-EVF-Idempotency-Key'), 'evf-msg-7')
    assert.equal(header(mail.raw, 'Message-ID'), '<evf-msg-7@plant.example>')
    const text = part(mail.raw, 'text/plain')
    assert.match(text, /paint \/ booth_temp: raised/)
    assert.match(text, /paint \/ booth_humidity: raised/)
    assert.equal(text.replace(/\r\n/g, '\n'), rendered.text)
    assert.match(part(mail.raw, 'text/html'), /<h1[^>]*>paint: 2 alarms raised<\/h1>/)
  })

  it('logs in with the user and password of the URL', async (t) => {
    const logins: string[] = []
    const { port, mails } = await smtpServer(t, {
      allowInsecureAuth: true,
      authOptional: false,
      onAuth(auth, _session, callback) {
        logins.push(`${auth.username}:${auth.password}`)
        if (auth.username === 'evf@plant' && auth.password === 'p@ss:w/rd')
          callback(null, { user: auth.username })
        else callback(new Error('Invalid username or password'))
      },
    })
    const url = `smtp://${encodeURIComponent('evf@plant')}:${encodeURIComponent('p@ss:w/rd')}@127.0.0.1:${port}`
    const mailer = createMailer(url, { from: FROM, timeoutMs: 5_000 })
    t.after(() => mailer.close())
    await mailer.send(['ana@plant.example'], renderEmail(payload()))
    assert.deepEqual(logins, ['evf@plant:p@ss:w/rd'])
    assert.equal(mails.length, 1)
  })

  it('a recipient refused with 550 makes it throw with the code; one refused of two is answered', async (t) => {
    const { port, mails } = await smtpServer(t, {
      onRcptTo(address, _session, callback) {
        if (address.address.startsWith('gone@'))
          callback(Object.assign(new Error('5.1.1 No such user here'), { responseCode: 550 }))
        else callback()
      },
    })
    const mailer = createMailer(`smtp://127.0.0.1:${port}`, { from: FROM, timeoutMs: 5_000 })
    t.after(() => mailer.close())
    await assert.rejects(mailer.send(['gone@plant.example'], renderEmail(payload())), (err: Error) => {
      assert.match(
        err.message,
        new RegExp(`^smtp 127\\.0\\.0\\.1:${port}: RCPT TO answered 550: 550 5\\.1\\.1 No such user`),
      )
      return true
    })
    assert.equal(mails.length, 0)
    const partly = await mailer.send(['gone@plant.example', 'ana@plant.example'], renderEmail(payload()))
    assert.deepEqual(partly.rejected, ['gone@plant.example'])
    assert.deepEqual(mails[0]?.to, ['ana@plant.example'])
  })

  it('SMTP down (nothing listening) throws: connection refused', async (t) => {
    const port = await closedPort()
    const mailer = createMailer(`smtp://127.0.0.1:${port}`, { from: FROM, timeoutMs: 5_000 })
    t.after(() => mailer.close())
    await assert.rejects(
      mailer.send(['ana@plant.example'], renderEmail(payload())),
      new RegExp(`^Error: smtp 127\\.0\\.0\\.1:${port}: connection refused \\(.*ECONNREFUSED`),
    )
  })

  it('a server that never greets times out', async (t) => {
    const silent = createTcpServer(() => {})
    silent.listen(0, '127.0.0.1')
    await once(silent, 'listening')
    t.after(async () => {
      await new Promise((r) => silent.close(r))
    })
    const port = (silent.address() as AddressInfo).port
    const mailer = createMailer(`smtp://127.0.0.1:${port}`, { from: FROM, timeoutMs: 300 })
    t.after(() => mailer.close())
    const started = Date.now()
    await assert.rejects(mailer.send(['ana@plant.example'], renderEmail(payload())), /: timeout \(/)
    assert.ok(Date.now() - started < 3_000)
  })

  it('reads smtp:// and smtps:// URLs, refuses others; a Message-ID per key', () => {
    assert.deepEqual(
      { ...smtpOptions('smtps://u%40x:p%3Aq@mail.plant.example', 1_000), connectionTimeout: 0 },
      {
        host: 'mail.plant.example',
        secure: true,
        auth: { user: 'u@x', pass: 'p:q' },
        pool: false,
        connectionTimeout: 0,
        greetingTimeout: 1_000,
        socketTimeout: 1_000,
        dnsTimeout: 1_000,
      },
    )
    const plain = smtpOptions('smtp://[::1]:2525', 500)
    assert.equal(plain.host, '::1')
    assert.equal(plain.port, 2525)
    assert.equal(plain.secure, false)
    assert.equal(plain.auth, undefined)
    assert.throws(() => smtpOptions('http://mail', 1), /must start with smtp:\/\/ or smtps:\/\//)
    assert.throws(() => smtpOptions('mail.plant.example:25', 1), /must start with smtp/)
    assert.throws(() => smtpOptions('not a url', 1), /not a URL/)
    assert.equal(messageIdOf('evf-msg-7', 'alarms@plant.example'), '<evf-msg-7@plant.example>')
    const odd = messageIdOf('evf msg/7 <x>', FROM)
    assert.match(odd, /^<[0-9a-f]{64}@plant\.example>$/)
    assert.equal(messageIdOf('evf msg/7 <x>', FROM), odd, 'the same key, the same Message-ID')
    assert.equal(messageIdOf('k', 'nobody'), '<k@evf.invalid>')
  })
})
