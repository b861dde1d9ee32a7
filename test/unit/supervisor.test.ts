import assert from 'node:assert/strict'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { cron } from '../../src/orchestrator/index.ts'
import { createLogger } from '../../src/shared/log.ts'
import {
  type ChildSpec,
  type RestartPolicy,
  restartWithBackoff,
  Supervisor,
  type SupervisorOptions,
  stopOnExit,
} from '../../src/shared/supervisor.ts'
import { sleep, waitFor } from '../helpers.ts'

/** A supervisor whose log lines (parsed) and printed lines are kept for the test to read. */
async function supervised(t: TestContext, opts: Partial<SupervisorOptions> = {}) {
  const logs: Record<string, unknown>[] = []
  const printed: string[] = []
  const failures: [string, number | null][] = []
  const logsDir = await mkdtemp(join(tmpdir(), 'evf-supervisor-'))
  const log = createLogger('test', 'info', { write: (line: string) => void logs.push(JSON.parse(line)) })
  const supervisor = new Supervisor({
    log,
    logsDir,
    print: (name, line) => printed.push(`${name} ${line}`),
    onFailure: (name, code) => failures.push([name, code]),
    ...opts,
  })
  t.after(async () => {
    await supervisor.stopAll({ graceMs: 1000, parallel: true })
    await rm(logsDir, { recursive: true, force: true })
  })
  return { supervisor, logs, printed, failures, logsDir }
}

/** `node -e <script>` as a child of the supervisor. */
const node = (name: string, script: string, restart: RestartPolicy, output: ChildSpec['output'] = 'log') => ({
  name,
  command: process.execPath,
  args: ['-e', script],
  env: {},
  restart,
  output,
})

/** Waits on the supervisor's own state, looked at every 20 ms. */
const until = (what: string, fn: () => boolean, timeoutMs = 10_000) =>
  waitFor(what, fn, timeoutMs, { everyMs: 20 })
const FOREVER = 'setInterval(() => {}, 1000)'

describe('Supervisor', () => {
  it('stop policy: a child that exits non-zero is logged with its last lines and reported, never restarted', async (t) => {
    const { supervisor, logs, failures, logsDir } = await supervised(t)
    await supervisor.start(node('sim', 'console.log("last words"); process.exit(3)', stopOnExit))
    await until('the failure', () => failures.length > 0)
    assert.deepEqual(failures, [['sim', 3]])
    const line = logs.find((l) => l.msg === 'sim exited unexpectedly')
    assert.ok(line, JSON.stringify(logs))
    assert.equal(line.level, 50)
    assert.deepEqual(line.lastLines, ['last words'])
    await sleep(700)
    assert.equal(logs.filter((l) => String(l.msg).includes('starting it again')).length, 0)
    assert.match(await readFile(join(logsDir, 'sim.log'), 'utf8'), /^last words$/m)
  })

  it('stop policy: a child that exits 0 is reported as finished, not as a failure', async (t) => {
    const { supervisor, printed, failures } = await supervised(t)
    await supervisor.start(node('sim', 'process.exit(0)', stopOnExit))
    await until('finished', () => printed.some((p) => p.startsWith('sim ') && p.includes('"finished"')))
    assert.deepEqual(failures, [])
  })

  it('stop policy: a program that cannot be started is a failure too', async (t) => {
    const { supervisor, failures } = await supervised(t)
    await supervisor.start({ ...node('ghost', '', stopOnExit), command: '/nonexistent/program' })
    await until('the failure', () => failures.length > 0)
    assert.deepEqual(failures, [['ghost', null]])
  })

  it('backoff policy: a child that dies is started again, logged at error level each time', async (t) => {
    const { supervisor, logs, failures } = await supervised(t)
    await supervisor.start({
      ...node('broker-2', 'process.exit(1)', restartWithBackoff(60_000)),
      label: 'Kafka broker',
      logFields: { broker: 2 },
    })
    // backoff(1) ≤ 500 ms, backoff(2) ≤ 1 s: two restarts within a few seconds.
    const restarts = () => logs.filter((l) => l.msg === 'Kafka broker exited; starting it again')
    await until('two restarts', () => restarts().length >= 2)
    const [first, second] = restarts() as { level: number; broker: number; restartInMs: number }[]
    assert.equal(first!.level, 50)
    assert.equal(first!.broker, 2)
    assert.ok(first!.restartInMs >= 250 && first!.restartInMs <= 500, String(first!.restartInMs))
    assert.ok(second!.restartInMs >= 500 && second!.restartInMs <= 1000, 'a crash loop backs off')
    assert.deepEqual(failures, [], 'the owner is not told to stop')
  })

  it('recycle stops the running children and their policy starts them again; stopAll ends it all', async (t) => {
    const { supervisor, logs } = await supervised(t)
    const first = await supervisor.start(node('worker', FOREVER, restartWithBackoff(), 'inherit'))
    await supervisor.recycle(1000)
    assert.equal(first.signalCode, 'SIGTERM')
    await until('a restart', () => logs.some((l) => l.msg === 'worker exited; starting it again'))
    await sleep(600) // backoff(1) is at most 500 ms
    await supervisor.stopAll({ graceMs: 1000 })
    const count = logs.length
    await sleep(700)
    assert.equal(logs.length, count, 'nothing restarts after stopAll')
  })

  it('once its signal aborts, a child that exits is neither restarted nor reported', async (t) => {
    const controller = new AbortController()
    const { supervisor, logs, failures } = await supervised(t, { signal: controller.signal })
    const child = await supervisor.start(node('worker', FOREVER, restartWithBackoff(), 'inherit'))
    await supervisor.start(node('api', FOREVER, stopOnExit))
    controller.abort()
    child.kill('SIGTERM')
    await new Promise((resolve) => child.once('exit', resolve))
    await sleep(700)
    assert.equal(logs.filter((l) => String(l.msg).includes('exited')).length, 0)
    assert.deepEqual(failures, [])
  })

  it('stopAll stops the children in the reverse order of their start', async (t) => {
    const { supervisor, printed } = await supervised(t)
    const script = (name: string) =>
      `process.on('SIGTERM', () => { console.log('${name} stops'); setTimeout(() => process.exit(0), 100) }); ${FOREVER}`
    for (const name of ['kafka', 'etl', 'api']) {
      await supervisor.start({ ...node(name, script(name), stopOnExit), group: true })
    }
    await sleep(300)
    await supervisor.stopAll({ graceMs: 2000 })
    await sleep(50)
    assert.deepEqual(
      printed.filter((p) => p.endsWith('stops')).map((p) => p.split(' ')[0]),
      ['api', 'etl', 'kafka'],
    )
  })
})

describe('cron', () => {
  it('never runs twice at once, and stop() waits for the run in progress', async () => {
    let running = 0
    let most = 0
    let runs = 0
    const job = cron('* * * * * *', async () => {
      running++
      most = Math.max(most, running)
      await sleep(1500)
      running--
      runs++
    })
    assert.ok(job.nextRun())
    await until('a run', () => running > 0, 3000)
    await job.stop()
    assert.equal(running, 0, 'the run in progress finished')
    assert.equal(runs, 1)
    assert.equal(most, 1)
  })
})

describe('Supervisor hooks (a Kafka cluster node)', () => {
  it('tells of each spawn and each exit of its own, and writes the lines to the logFile given', async (t) => {
    const { supervisor, logsDir } = await supervised(t)
    const spawned: number[] = []
    const exits: (number | null)[] = []
    const logFile = join(logsDir, 'node-2', 'logs', 'stdout.log')
    await supervisor.start({
      ...node('kafka-node-2', 'console.log("up"); process.exit(4)', restartWithBackoff(60_000), 'quiet'),
      logFile,
      onSpawn: (child) => spawned.push(child.pid!),
      onExit: (code) => exits.push(code),
    })
    await until('a restart and its exit', () => exits.length >= 2 && spawned.length >= 2)
    assert.ok(new Set(spawned).size >= 2, 'a new process each time')
    assert.deepEqual(exits.slice(0, 2), [4, 4])
    assert.match(await readFile(logFile, 'utf8'), /^up$/m)
    await supervisor.stopAll({ graceMs: 1000 })
    const count = exits.length
    await sleep(700)
    assert.equal(exits.length, count, 'an exit stopAll caused is not told')
  })
})
