/**
 * A notification by e-mail, through an SMTP relay with nodemailer: one attempt per `send`
 * (docs/alarms.md). The outbox retries with backoff and records each attempt, so `send` only
 * succeeds or throws an Error that says what failed: the SMTP reply code and text, a timeout, a
 * refused connection.
 *
 * The Message-ID is derived from the message's idempotency key, so an e-mail sent again after an
 * attempt whose outcome was lost (the relay took it, the answer never came) carries the same
 * Message-ID as the first, and mail systems and clients can tell it for a duplicate; the key is
 * in `X-EVF-Idempotency-Key` too, for filters and for people.
 */
import { createHash } from 'node:crypto'
import { createTransport, type SMTPTransportOptions } from 'nodemailer'
import type { RenderedEmail } from './payload.ts'

export interface MailerOptions {
  /** the sender, `alarms@plant.example` or `"EVF alarms" <alarms@plant.example>` */
  from: string
  /** each of: connecting, the server's greeting, any silence of the server afterwards; in ms */
  timeoutMs: number
}

export interface Mailer {
  /**
   * Sends `rendered` to `to` in one SMTP session. Throws when the session fails or every
   * recipient is refused; recipients refused while others were accepted are answered in
   * `rejected` (the message went out: sending it again would repeat it to the others).
   */
  send(to: string[], rendered: RenderedEmail): Promise<{ messageId: string; rejected: string[] }>
  close(): void
}

/**
 * The transport's options from `smtp://[user:pass@]host[:port]` or `smtps://…` (TLS from the
 * start). Without a port, nodemailer's defaults: 587, or 465 for smtps. Over smtp://, STARTTLS is
 * used when the server offers it (and its certificate must then be valid).
 */
export function smtpOptions(smtpUrl: string, timeoutMs: number): SMTPTransportOptions {
  let url: URL
  try {
    url = new URL(smtpUrl)
  } catch {
    throw new Error('SMTP URL is not a URL (expected smtp://[user:pass@]host[:port] or smtps://…)')
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:')
    throw new Error(`SMTP URL must start with smtp:// or smtps://, not ${url.protocol}//`)
  if (url.hostname === '') throw new Error('SMTP URL has no host')
  const user = decodeURIComponent(url.username)
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    ...(url.port ? { port: Number(url.port) } : {}),
    secure: url.protocol === 'smtps:',
    ...(user ? { auth: { user, pass: decodeURIComponent(url.password) } } : {}),
    // One connection per send, no pool: alarm mail is rare (grouped and flood-guarded upstream),
    // so a connection's setup costs nothing that matters, and each outbox attempt is then a
    // session of its own with its own timeouts: no idle pooled connection the relay dropped in
    // between to fail an attempt for a reason that is not this message's, no state shared between
    // attempts. `close()` has nothing to end but is there should this change.
    pool: false,
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
    dnsTimeout: timeoutMs,
  }
}

/** `<key@domain>`: the key as is when it is a valid left part, else its SHA-256 (still one per key). */
export function messageIdOf(key: string, from: string): string {
  const left = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$/.test(key)
    ? key
    : createHash('sha256').update(key).digest('hex')
  const domain = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from)?.[1] ?? 'evf.invalid'
  return `<${left}@${domain}>`
}

interface SmtpFailure {
  code?: string
  responseCode?: number
  response?: string
  command?: string
  message?: string
}

/** What went wrong in an SMTP session, in words, with the server's reply code when there is one. */
function failure(err: unknown): string {
  const e: SmtpFailure = typeof err === 'object' && err !== null ? (err as SmtpFailure) : {}
  const detail = e.message ?? String(err)
  if (typeof e.responseCode === 'number') {
    const reply = (e.response ?? detail).replace(/\s+/g, ' ').trim()
    return `${e.command ?? 'the server'} answered ${e.responseCode}: ${reply}`
  }
  if (/ECONNREFUSED/.test(detail)) return `connection refused (${detail})`
  if (e.code === 'ETIMEDOUT') return `timeout (${detail})`
  if (e.code === 'EDNS') return `host not found (${detail})`
  if (e.code === 'ETLS') return `TLS failed (${detail})`
  if (e.code === 'EAUTH') return `login failed (${detail})`
  return `${e.code ?? 'failed'} (${detail})`
}

export function createMailer(smtpUrl: string, options: MailerOptions): Mailer {
  const transportOptions = smtpOptions(smtpUrl, options.timeoutMs)
  const where = `smtp ${transportOptions.host}:${transportOptions.port ?? (transportOptions.secure ? 465 : 587)}`
  const transport = createTransport(transportOptions)
  return {
    async send(to, rendered) {
      if (to.length === 0) throw new Error(`${where}: no recipients`)
      try {
        const info = await transport.sendMail({
          from: options.from,
          to,
          subject: rendered.subject,
          text: rendered.text,
          html: rendered.html,
          messageId: messageIdOf(rendered.key, options.from),
          headers: { 'X-EVF-Idempotency-Key': rendered.key },
        })
        return { messageId: info.messageId, rejected: info.rejected.map(String) }
      } catch (err) {
        throw new Error(`${where}: ${failure(err)}`, { cause: err })
      }
    },
    close() {
      transport.close()
    },
  }
}
