// @alone: three Kafka nodes, a primary and a standby started as root on a fresh data directory
/**
 * A first start on a fresh clone (issue 19, defect 2): as root, PostgreSQL runs as the `postgres`
 * user, which must be able to enter the data directory. A 3-node Kafka cluster makes its secrets
 * directory (0700) before anything else made the data directory; a `recursive: true, mode: 0o700`
 * gave that mode to the data directory too, and initdb could not reach `<dataDir>/postgres`.
 */
import assert from 'node:assert/strict'
import { statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { readKafkaSecrets } from '../../src/kafka/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { rememberSecret } from '../secrets.ts'
import { killGroup, stackUp } from './group.ts'

describe('stack up on a fresh data directory', () => {
  it('as root, starts a 3-node Kafka cluster and a PostgreSQL hot standby: the data directory stays enterable', async (t) => {
    assert.equal(process.getuid?.(), 0, 'this test is about running as root (PostgreSQL as postgres)')
    // A directory no earlier step made: the first `stack up` of a fresh clone.
    const dataDir = join(repoRoot, '.test-stack', `fresh-${process.pid}`, '.stack')
    await rm(join(dataDir, '..'), { recursive: true, force: true })
    t.after(() => rm(join(dataDir, '..'), { recursive: true, force: true }))
    // Ports apart from every other test's: node i on base + 2(i-1), its controller one up.
    const base = 23_100 + 2 * Math.floor(Math.random() * 20)
    const apiPort = await freePort()
    const stack = stackUp(
      [
        '--data-dir',
        dataDir,
        '--kafka-nodes',
        '3',
        '--postgres-replica',
        '--kafka-port',
        String(base),
        '--kafka-controller-port',
        String(base + 1),
        '--api-port',
        String(apiPort),
      ],
      { EVF_SIM_INTERVAL_MS: '1000', EVF_SIM_SENSORS_PER_STATION: '1', EVF_KAFKA_HEAP_MB: '256' },
    )
    t.after(() => killGroup(stack.child.pid, 'SIGKILL'))
    const up = await Promise.race([
      stack.exited.then((code) => `exited with ${code}`),
      new Promise<string>((resolve) => {
        const poll = setInterval(() => {
          if (!stack.output().includes('pipeline is up')) return
          clearInterval(poll)
          resolve('up')
        }, 500)
        t.after(() => clearInterval(poll))
      }),
      new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 300_000).unref()),
    ])
    for (const password of Object.values(readKafkaSecrets(dataDir) ?? {})) rememberSecret(password)
    assert.equal(up, 'up', `the stack did not start:\n${stack.output().slice(-4000)}`)
    assert.match(stack.output(), /Standby/, 'the hot standby runs')
    // Only the secrets directory is private; the data directory and its parent keep the umask's mode.
    assert.equal(statSync(join(dataDir, 'secrets')).mode & 0o777, 0o700)
    for (const dir of [dataDir, join(dataDir, '..')])
      assert.notEqual(statSync(dir).mode & 0o077, 0, `${dir} is enterable by PostgreSQL's user`)

    killGroup(stack.child.pid, 'SIGINT')
    const timer = setTimeout(() => killGroup(stack.child.pid, 'SIGKILL'), 120_000)
    const code = await stack.exited
    clearTimeout(timer)
    assert.equal(code, 0, stack.output().slice(-4000))
  })
})
