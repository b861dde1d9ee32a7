// @alone: it holds free ports busy on purpose; a neighbour picking one of them would change what it tests
/**
 * A busy port is refused before anything starts (issue 19, defect 4). With something on the API's
 * port, `stack up` used to start PostgreSQL and Kafka, lose the API to EADDRINUSE, and end on an
 * error its own stop sequence raised (`DATABASE_UNREACHABLE`, exit 4).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createServer, type Server } from 'node:http'
import { createServer as createNetServer, type Server as NetServer } from 'node:net'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { errorCodes } from '../../src/errors/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { killGroup, stackUp } from './group.ts'

/**
 * `evf stack up` to its end: its exit code and everything it printed. `onOutput` sees the output
 * as it comes.
 */
async function stackUpToEnd(
  args: string[],
  onOutput: (output: string) => void = () => undefined,
): Promise<{ code: number | null; output: string }> {
  const stack = stackUp(args, { EVF_KAFKA_HEAP_MB: '256' }, onOutput)
  const timer = setTimeout(() => killGroup(stack.child.pid, 'SIGKILL'), 180_000)
  const code = await stack.exited
  clearTimeout(timer)
  return { code, output: stack.output() }
}

/**
 * Something else on 127.0.0.1:`port`: a development server answering every request with 200, or
 * with `http: false` a listener that speaks no HTTP.
 */
async function squat(t: TestContext, port: number, http = true): Promise<Server | NetServer> {
  const server = http ? createServer((_req, res) => res.end('{}')) : createNetServer((s) => s.destroy())
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve))
  t.after(() => server.close())
  return server
}

async function freshDataDir(t: TestContext, name: string): Promise<string> {
  const dataDir = join(repoRoot, '.test-stack', `${name}-${process.pid}`)
  await rm(dataDir, { recursive: true, force: true })
  t.after(() => rm(dataDir, { recursive: true, force: true }))
  return dataDir
}

/** Kafka ports apart from every other test's (node i on base + 2(i-1), its controller one up). */
const kafkaBase = () => 23_150 + 2 * Math.floor(Math.random() * 20)

describe('stack up on a busy port', () => {
  it('refuses a busy API port before starting anything, naming EVF_API_PORT', async (t) => {
    const dataDir = await freshDataDir(t, 'busy-api')
    const apiPort = await freePort()
    await squat(t, apiPort)
    const base = kafkaBase()
    const ports = ['--kafka-port', String(base), '--kafka-controller-port', String(base + 1)]
    const { code, output } = await stackUpToEnd([
      '--data-dir',
      dataDir,
      '--api-port',
      String(apiPort),
      ...ports,
    ])
    assert.equal(code, errorCodes.SERVICE_START_FAILED.exitCode, output)
    assert.match(output, new RegExp(`port ${apiPort}.*in use.*EVF_API_PORT`), output)
    assert.ok(!existsSync(join(dataDir, 'postgres')), 'PostgreSQL was not started')
    assert.ok(!existsSync(join(dataDir, 'kafka')), 'Kafka was not started')
  })

  it('refuses a busy port of any node of a Kafka cluster before starting anything, naming its setting', async (t) => {
    const dataDir = await freshDataDir(t, 'busy-kafka')
    const base = kafkaBase()
    // Node 3's controller listens on EVF_KAFKA_CONTROLLER_PORT + 4.
    await squat(t, base + 1 + 4)
    const { code, output } = await stackUpToEnd([
      '--data-dir',
      dataDir,
      '--api-port',
      String(await freePort()),
      '--kafka-nodes',
      '3',
      '--kafka-port',
      String(base),
      '--kafka-controller-port',
      String(base + 1),
    ])
    assert.equal(code, errorCodes.SERVICE_START_FAILED.exitCode, output)
    assert.match(output, new RegExp(`port ${base + 5}.*in use.*EVF_KAFKA_CONTROLLER_PORT`), output)
    assert.ok(!existsSync(join(dataDir, 'postgres')), 'PostgreSQL was not started')
    assert.ok(!existsSync(join(dataDir, 'kafka')), 'Kafka was not started')
  })

  it('taken after the check, ends with the API’s own failure, not with what failed while stopping', async (t) => {
    const dataDir = await freshDataDir(t, 'late-api')
    const apiPort = await freePort()
    const base = kafkaBase()
    let squatted: Promise<unknown> | undefined
    const { code, output } = await stackUpToEnd(
      [
        '--data-dir',
        dataDir,
        '--api-port',
        String(apiPort),
        '--kafka-port',
        String(base),
        '--kafka-controller-port',
        String(base + 1),
      ],
      // Once the services start, the ports were checked: the API's is taken from under it.
      (out) => {
        if (!squatted && out.includes('initialising PostgreSQL')) squatted = squat(t, apiPort, false)
      },
    )
    assert.ok(squatted, output)
    assert.match(output, /api exited unexpectedly/, output)
    assert.doesNotMatch(output, /pipeline is up/, 'no banner for a stack going down')
    assert.equal(code, errorCodes.SERVICE_START_FAILED.exitCode, output)
    assert.match(output, new RegExp(`port ${apiPort} is already in use.*EVF_API_PORT`), output)
    assert.doesNotMatch(output, /evf: DATABASE_UNREACHABLE/, output)
  })
})
