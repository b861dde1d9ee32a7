// @alone: the whole stack (Kafka, PostgreSQL, every stage) started as a user would, with its own timings
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { readKafkaSecrets } from '../../src/kafka/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { waitFor } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'
import { type GroupChild, killGroup, startInGroup } from './group.ts'

const dataDir = join(repoRoot, '.test-stack', 'e2e')

/** `npm start` in its own process group, as a terminal runs it; Ctrl-C is SIGINT to the group. */
function npmStart(apiPort: number, kafkaPort: number, controllerPort: number): GroupChild {
  return startInGroup(
    'npm',
    [
      'start',
      '--',
      '--data-dir',
      dataDir,
      '--kafka-port',
      String(kafkaPort),
      '--kafka-controller-port',
      String(controllerPort),
      '--api-port',
      String(apiPort),
    ],
    { EVF_SIM_INTERVAL_MS: '500', EVF_SIM_SENSORS_PER_STATION: '1' },
  )
}

async function ctrlC(stack: ReturnType<typeof npmStart>): Promise<void> {
  killGroup(stack.child.pid, 'SIGINT')
  const timer = setTimeout(() => killGroup(stack.child.pid, 'SIGKILL'), 90_000)
  await stack.exited
  clearTimeout(timer)
}

describe('npm start', () => {
  it('runs the whole pipeline: fresh readings of every station over HTTP, a clean stop, and a resume', async (t) => {
    await rm(dataDir, { recursive: true, force: true })
    const [apiPort, kafkaPort, controllerPort] = [await freePort(), await freePort(), await freePort()]
    const url = `http://127.0.0.1:${apiPort}/sensor-data?limit=200`
    const stack = npmStart(apiPort, kafkaPort, controllerPort)
    t.after(() => {
      killGroup(stack.child.pid, 'SIGKILL')
    })

    await waitFor(
      'the stack banner',
      async () => (stack.output().includes('pipeline is up') ? true : undefined),
      180_000,
      { everyMs: 500, retryErrors: true, detail: () => stack.output().slice(-4000) },
    )
    // The banner's dashboard link logs in once, as a person's browser would: it sets the session cookie.
    // The stack's Kafka users (generated at its first start) must not be in any log either.
    for (const password of Object.values(readKafkaSecrets(dataDir) ?? {})) rememberSecret(password)
    const link = /Dashboard\s+(http:\S+\/login\?token=(\S+))/.exec(stack.output())
    assert.ok(link, 'the banner has a one-time login link')
    rememberSecret(link[2]!)
    const login = await fetch(link[1]!, { redirect: 'manual' })
    assert.equal(login.status, 303)
    const cookie = login.headers.get('set-cookie')!.split(';')[0]!
    rememberSecret(cookie.split('=')[1]!)
    assert.equal((await fetch(url)).status, 401, 'nothing is served without a credential')
    const get = (u: string) => fetch(u, { headers: { cookie } })
    const rows = await waitFor(
      'a fresh reading of each station',
      async () => {
        const body = (await (await get(url)).json()) as { station: string; data: { timestamp: number } }[]
        const stations = new Set(body.map((r) => r.station))
        const newest = Math.max(...body.map((r) => r.data.timestamp))
        return stations.size === 4 && Date.now() / 1000 - newest < 30 ? body : undefined
      },
      30_000,
      { everyMs: 500, retryErrors: true, detail: () => stack.output().slice(-4000) },
    )
    assert.ok(rows.length >= 4)

    await ctrlC(stack)
    const out = stack.output()
    assert.match(out, /simulator stopped/, 'the simulator flushed and stopped')
    assert.match(out, /stack stopped/)
    assert.doesNotMatch(out, /exited unexpectedly/)
    assert.ok(!existsSync(join(dataDir, 'kafka', 'broker.pid')), 'the broker was stopped')
    assert.ok(!existsSync(join(dataDir, 'postgres', 'postmaster.pid')), 'PostgreSQL was stopped')

    // A second start resumes on the same data.
    const again = npmStart(apiPort, kafkaPort, controllerPort)
    t.after(() => {
      killGroup(again.child.pid, 'SIGKILL')
    })
    await waitFor(
      'the second banner',
      async () => (again.output().includes('pipeline is up') ? true : undefined),
      180_000,
      { everyMs: 500, retryErrors: true, detail: () => again.output().slice(-4000) },
    )
    const first = rows[rows.length - 1]!
    // The session lives in PostgreSQL: the same cookie still works after the restart.
    const resumed = (await (await get(`${url.replace('limit=200', 'limit=1000')}`)).json()) as {
      id: number
    }[]
    assert.ok(resumed.length >= rows.length, 'rows of the first run are still there')
    assert.ok(resumed.some((r) => r.id === (first as unknown as { id: number }).id))
    await ctrlC(again)
    assert.match(again.output(), /stack stopped/)
  })
})
