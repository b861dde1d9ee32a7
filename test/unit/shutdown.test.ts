import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { PipelineError } from '../../src/errors/index.ts'
import { createLogger } from '../../src/shared/log.ts'
import { orderedShutdown } from '../../src/stack/shutdown.ts'

const lines: string[] = []
const log = createLogger('stack', 'info', { write: (l: string) => lines.push(l) })
const dbGone = () =>
  new PipelineError('DATABASE_UNREACHABLE', 'PostgreSQL unreachable: Connection terminated')

describe('the stack’s stop sequence', () => {
  it('ends with the start-up failure that stopped it, not with what failed while stopping', async () => {
    let runs = 0
    const shutdown = orderedShutdown(log, async () => {
      runs++
      throw dbGone() // the stop's own error
    })
    const cause = new PipelineError('SERVICE_START_FAILED', 'port 8000 is already in use: set EVF_API_PORT')
    const first = shutdown.fail({ error: cause }, 'start-up failed')
    // A start-up step that lost its database to the stop fails too, later.
    await shutdown.fail({ error: dbGone() }, 'start-up failed')
    await first
    await assert.rejects(shutdown.outcome(), (e) => e === cause)
    assert.equal(runs, 1, 'the stop runs once')
    assert.ok(
      lines.some((l) => l.includes('did not stop cleanly')),
      'the stop’s error is logged',
    )
    assert.ok(
      lines.some((l) => l.includes('not the cause')),
      'the later failure is logged',
    )
  })

  it('ends with the exit code of the component that died first, whatever start-up threw after', async () => {
    const shutdown = orderedShutdown(log, async () => undefined)
    void shutdown.fail({ component: 'api', exitCode: 6 }, 'api exited')
    void shutdown.fail({ error: dbGone() }, 'start-up failed')
    void shutdown.fail({ component: 'etl', exitCode: 4 }, 'etl exited')
    assert.equal(await shutdown.outcome(), 6)
  })

  it('ends with 0 when stopped by a signal, even if start-up then fails', async () => {
    const shutdown = orderedShutdown(log, async () => undefined)
    assert.equal(shutdown.stopping(), false)
    void shutdown.stop('SIGINT')
    assert.equal(shutdown.stopping(), true)
    await shutdown.fail({ error: dbGone() }, 'start-up failed')
    assert.equal(await shutdown.outcome(), 0)
  })
})
