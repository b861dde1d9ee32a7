/**
 * A notification to a webhook: one signed POST, one attempt (docs/alarms.md). The outbox retries
 * with backoff and records each attempt, so this only succeeds (any 2xx) or throws an Error that
 * says what failed: the HTTP status and the first bytes of the answer, a timeout, a refused
 * connection.
 *
 * Signed the way Stripe and Slack sign theirs: `X-EVF-Signature: sha256=<hex>` is the HMAC-SHA256,
 * keyed by the receiver's secret, of `<X-EVF-Timestamp>.<body>`, over exactly the bytes sent. A
 * receiver recomputes it on the raw body (`verifySignature`) and rejects an old timestamp, so a
 * captured request cannot be replayed later; `Idempotency-Key` (the same on every attempt of a
 * message) lets it drop a retry it already processed.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'
import type { NotificationPayload } from './payload.ts'

export const USER_AGENT = 'evf-alarms/1'
/** How much of a failed answer's body an error quotes. */
const BODY_QUOTE_BYTES = 200

export interface WebhookOptions {
  /** the message's idempotency key, sent as `Idempotency-Key` */
  key: string
  /** the whole attempt, answer included, in ms */
  timeoutMs: number
  /** the global fetch unless given (tests, a proxy's dispatcher) */
  fetch?: typeof globalThis.fetch
  /** the clock, in ms (the timestamp signed) */
  now?: () => number
}

/** `sha256=<hex>` of `<timestamp>.<body>` keyed by `secret`. */
export function sign(secret: string, timestamp: number | string, body: string | Uint8Array): string {
  return `sha256=${createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')}`
}

/** Where a webhook goes, for messages: scheme, host and port only (a Slack-style path is a secret). */
function origin(url: string): string {
  try {
    return new URL(url).origin
  } catch {
    return 'webhook (invalid URL)'
  }
}

/** The first bytes of an answer's body, as text, for an error message. */
async function quoteBody(res: Response): Promise<string> {
  if (res.body === null) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  try {
    while (size < BODY_QUOTE_BYTES) {
      const { done, value } = await reader.read()
      if (done) break
      chunks.push(value)
      size += value.byteLength
    }
  } catch {
    // the answer broke off: quote what came
  } finally {
    reader.cancel().catch(() => {})
  }
  const text = Buffer.concat(chunks).subarray(0, BODY_QUOTE_BYTES).toString('utf8')
  const oneLine = text.replace(/\s+/g, ' ').trim()
  return size > BODY_QUOTE_BYTES ? `${oneLine}…` : oneLine
}

/** Why a request got no answer, in words: refused, timed out, not found… */
function networkFailure(err: unknown, timeoutMs: number): string {
  if (err instanceof DOMException && err.name === 'TimeoutError')
    return `no answer within ${timeoutMs} ms (timeout)`
  const cause = err instanceof Error && err.cause instanceof Error ? err.cause : err
  const code = (cause as { code?: unknown } | null)?.code
  const detail = cause instanceof Error ? cause.message : String(cause)
  const what: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ECONNRESET: 'connection reset',
    ENOTFOUND: 'host not found',
    EAI_AGAIN: 'host not found (DNS)',
    EHOSTUNREACH: 'host unreachable',
    ETIMEDOUT: 'connection timed out',
    UND_ERR_CONNECT_TIMEOUT: 'connection timed out',
    UND_ERR_SOCKET: 'connection closed',
  }
  return `${typeof code === 'string' && what[code] ? what[code] : 'request failed'} (${detail})`
}

/**
 * POSTs `payload` to `url`, signed with `secret`. Resolves with the status on a 2xx; throws
 * otherwise. Redirects are not followed (a 3xx is a failure): a POST must not turn into a GET.
 */
export async function sendWebhook(
  url: string,
  secret: string,
  payload: NotificationPayload,
  options: WebhookOptions,
): Promise<{ status: number }> {
  const doFetch = options.fetch ?? globalThis.fetch
  // Serialised once: the bytes signed are the bytes sent.
  const body = Buffer.from(JSON.stringify(payload), 'utf8')
  const timestamp = Math.floor((options.now ?? Date.now)() / 1000)
  const signal = AbortSignal.timeout(options.timeoutMs)
  let res: Response
  try {
    res = await doFetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal,
      headers: {
        'Content-Type': 'application/json',
        'Idempotency-Key': options.key,
        'X-EVF-Timestamp': String(timestamp),
        'X-EVF-Signature': sign(secret, timestamp, body),
        'User-Agent': USER_AGENT,
      },
      body,
    })
  } catch (err) {
    throw new Error(`webhook ${origin(url)}: ${networkFailure(err, options.timeoutMs)}`, { cause: err })
  }
  if (res.status >= 200 && res.status < 300) {
    await res.body?.cancel().catch(() => {})
    return { status: res.status }
  }
  const quoted = await quoteBody(res)
  const status = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`
  throw new Error(`webhook ${origin(url)}: ${status}${quoted ? `: ${quoted}` : ' (empty body)'}`)
}

export interface VerifyOptions {
  /** how old (or how far ahead) a timestamp may be, in seconds; 300 unless given */
  toleranceSec?: number
  /** the receiver's clock, in ms; Date.now() unless given */
  now?: number
}

/**
 * Whether a request is genuine and fresh: `header` (the `X-EVF-Signature` value) is the signature
 * of `timestamp` and the raw `body` received, and `timestamp` is within `toleranceSec` of `now`.
 * Compares in constant time. For receivers (and the tests).
 */
export function verifySignature(
  secret: string,
  timestamp: string | number | undefined,
  body: string | Uint8Array,
  header: string | undefined,
  options: VerifyOptions = {},
): boolean {
  const ts = typeof timestamp === 'number' ? timestamp : Number(timestamp)
  if (typeof timestamp === 'string' && !/^\d+$/.test(timestamp)) return false
  if (!Number.isSafeInteger(ts)) return false
  const now = (options.now ?? Date.now()) / 1000
  if (Math.abs(now - ts) > (options.toleranceSec ?? 300)) return false
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header?.trim() ?? '')
  if (!m) return false
  const expected = Buffer.from(sign(secret, ts, body).slice('sha256='.length), 'hex')
  return timingSafeEqual(expected, Buffer.from(m[1]!, 'hex'))
}
