import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { PipelineError } from '../../src/errors/index.ts'
import { type Readiness, readPid, startServer, stopOrphan, untilReady } from '../../src/services/index.ts'
import { createLogger } from '../../src/shared/log.ts'
import { alive } from '../../src/shared/process.ts'

const FOREVER = 'setInterval(() => {}, 1000)'

async function scratch(t: TestContext) {
  const dir = await mkdtemp(join(tmpdir(), 'evf-server-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const logs: Record<string, unknown>[] = []
  const log = createLogger('test', 'info', { write: (line: string) => void logs.push(JSON.parse(line)) })
  return { dir, log, logs }
}

/** A node process that runs `script`, in a process group of its own, as a server is. */
const server = (script: string) =>
  spawn(process.execPath, ['-e', script], { detached: true, stdio: 'ignore' })

const ready = (logFile: string, probe: Readiness['probe'], timeoutMs = 5_000): Readiness => ({
  probe,
  timeoutMs,
  intervalMs: 20,
  logFile,
  tailLines: 2,
  failure: ({ exited }) =>
    `test server ${exited !== null ? `exited with code ${exited}` : 'did not answer'}.`,
})

describe('one way to run a server', () => {
  it('reads the pid on a pid file’s first line, 0 without one', async (t) => {
    const { dir } = await scratch(t)
    await writeFile(join(dir, 'postmaster.pid'), '4242\n/var/lib/postgres\n')
    assert.equal(await readPid(join(dir, 'postmaster.pid')), 4242)
    assert.equal(await readPid(join(dir, 'missing.pid')), 0)
  })

  it('stops a server a killed stack left running, found by its pid file, with its own signal', async (t) => {
    const { dir, log, logs } = await scratch(t)
    const orphan = server(`process.on('SIGINT', () => process.exit(0)); ${FOREVER}`)
    t.after(() => void orphan.kill('SIGKILL'))
    const pidFile = join(dir, 'server.pid')
    await writeFile(pidFile, String(orphan.pid))
    await stopOrphan({ pidFile, message: 'stopping an orphan', signal: 'SIGINT', graceMs: 5_000 }, log)
    assert.equal(alive(orphan.pid!), false)
    assert.equal(logs[0]?.msg, 'stopping an orphan')
    assert.equal(logs[0]?.pid, orphan.pid)
    // A pid file whose process is gone is left alone, silently.
    await stopOrphan({ pidFile, message: 'stopping an orphan', signal: 'SIGINT', graceMs: 5_000 }, log)
    assert.equal(logs.length, 1)
  })

  it('a server that exits before it answers fails the start with the last lines of its log', async (t) => {
    const { dir } = await scratch(t)
    const logFile = join(dir, 'server.log')
    await writeFile(logFile, 'starting\nport taken\nbye\n')
    const child = server('process.exit(3)')
    const failure = await untilReady(
      child,
      ready(logFile, async () => {
        throw new Error('not yet')
      }),
    ).catch((e: unknown) => e)
    assert.ok(failure instanceof PipelineError)
    assert.equal(failure.code, 'SERVICE_START_FAILED')
    assert.equal(
      failure.message,
      `test server exited with code 3.\nLast lines of ${logFile}:\nport taken\nbye`,
    )
  })

  it('one that never answers is killed after the timeout; a missing log is said so', async (t) => {
    const { dir } = await scratch(t)
    const child = server(FOREVER)
    const exited = new Promise((resolve) => child.once('exit', (_code, signal) => resolve(signal)))
    const logFile = join(dir, 'none.log')
    await assert.rejects(
      untilReady(
        child,
        ready(
          logFile,
          async () => {
            throw new Error('not yet')
          },
          200,
        ),
      ),
      { message: `test server did not answer.\nLast lines of ${logFile}:\n(no log written)` },
    )
    assert.equal(await exited, 'SIGKILL')
  })

  it('starts: orphan, prepare, spawn, pid file, ready; stop uses its signal and removes our pid file', async (t) => {
    const { dir, log } = await scratch(t)
    const pidFile = join(dir, 'server.pid')
    const steps: string[] = []
    let probes = 0
    const running = await startServer({
      orphan: { pidFile, message: 'stopping an orphan', signal: 'SIGTERM', graceMs: 1_000 },
      prepare: async () => void steps.push('prepare'),
      spawn: () => {
        steps.push('spawn')
        // It answers once its SIGINT handler is in place: it writes a file.
        const up = JSON.stringify(join(dir, 'up'))
        return server(
          `process.on('SIGINT', () => process.exit(0)); require('fs').writeFileSync(${up}, ''); ${FOREVER}`,
        )
      },
      writePidFile: true,
      ready: ready(join(dir, 'server.log'), async () => {
        probes++
        if (!existsSync(join(dir, 'up'))) throw new Error('not yet')
      }),
      stopping: { signal: 'SIGINT', graceMs: 5_000 },
      log,
    })
    t.after(() => void running.process.kill('SIGKILL'))
    assert.deepEqual(steps, ['prepare', 'spawn'])
    assert.ok(probes >= 1, 'probed until it answered')
    assert.equal(await readFile(pidFile, 'utf8'), String(running.process.pid))
    await running.stop()
    assert.equal(running.process.signalCode ?? running.process.exitCode, 0, 'stopped by SIGINT, cleanly')
    assert.equal(existsSync(pidFile), false)
  })
})
