// Small helpers of the containers test: timed steps, commands, waiting, HTTP.
import { spawn, spawnSync } from 'node:child_process'
import { createServer } from 'node:net'

const started = Date.now()
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`

/** A line on stderr, stamped with the time since the test started. */
export function say(msg) {
  process.stderr.write(`[containers +${seconds(Date.now() - started).padStart(7)}] ${msg}\n`)
}

export const totalTime = () => seconds(Date.now() - started)

/** Runs one named step and prints how long it took. */
export async function step(name, fn) {
  const t0 = Date.now()
  say(`▶ ${name}`)
  const result = await fn()
  say(`✔ ${name} (${seconds(Date.now() - t0)})`)
  return result
}

const tail = (text, lines = 25) => text.trimEnd().split('\n').slice(-lines).join('\n')

/** Runs a command to its end and returns its stdout; a non-zero exit throws with its output. */
export function sh(cmd, args, { input, env, allowFail = false, inherit = false } = {}) {
  const r = spawnSync(cmd, args, {
    input,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
    stdio: inherit ? ['ignore', 'inherit', 'inherit'] : ['pipe', 'pipe', 'pipe'],
  })
  if (r.error) throw new Error(`cannot run ${cmd}: ${r.error.message}`)
  if (r.status !== 0 && !allowFail) {
    const output = inherit ? '' : `\n${tail(`${r.stdout}${r.stderr}`)}`
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}${output}`)
  }
  return allowFail ? { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' } : (r.stdout ?? '')
}

/**
 * Runs a command without blocking the event loop (the health-check loop goes on meanwhile).
 * Its output is streamed to `log` (a writable stream) when given; resolves with the exit code
 * and the captured output, and throws on a non-zero exit unless `allowFail`.
 */
export function run(cmd, args, { env, log, allowFail = false } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    const collect = (d) => {
      output += d
      log?.write(d)
    }
    child.stdout.on('data', collect)
    child.stderr.on('data', collect)
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)))
    child.on('close', (code) => {
      if (code === 0 || allowFail) resolve({ code, output })
      else reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}\n${tail(output)}`))
    })
  })
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `probe` until it returns a truthy value (returned), or throws after `timeoutMs`. */
export async function waitFor(what, timeoutMs, probe, everyMs = 1000) {
  const deadline = Date.now() + timeoutMs
  let last
  for (;;) {
    try {
      const value = await probe()
      if (value) return value
    } catch (error) {
      last = error
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${seconds(timeoutMs)} waiting for ${what}${last ? `: ${last.message}` : ''}`,
      )
    }
    await sleep(everyMs)
  }
}

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })
}

/** What API requests send: the bearer token the test made (`useToken`). */
const apiHeaders = {}
export function useToken(token) {
  apiHeaders.authorization = `Bearer ${token}`
}

export async function getJson(url) {
  const res = await fetch(url, { headers: apiHeaders, signal: AbortSignal.timeout(5000) })
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`)
  return res.json()
}

export function assert(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}
