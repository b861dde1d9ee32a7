import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type RetryInfo, retry } from '../../src/shared/retry.ts'
import { backoff, sleep } from '../../src/shared/time.ts'

/** A function that fails `failures` times, then answers `value`; its tries are kept. */
const flaky = (failures: number, value = 'done') => {
  const tries: number[] = []
  const fn = async (attempt: number) => {
    tries.push(attempt)
    if (tries.length <= failures) throw new Error(`failure ${tries.length}`)
    return value
  }
  return { fn, tries }
}

const instant = () => 0

describe('retry', () => {
  it('tries again until the function answers, and resolves with its answer', async () => {
    const { fn, tries } = flaky(3)
    assert.equal(await retry(fn, { delayMs: instant }), 'done')
    assert.deepEqual(tries, [1, 2, 3, 4], 'each try is given its number, 1 for the first')
  })

  it('counts attempts from 1: onRetry hears of each failure with its number, its error and the wait', async () => {
    const { fn } = flaky(3)
    const heard: RetryInfo[] = []
    const waits: number[] = []
    await retry(fn, {
      delayMs: (attempt) => {
        waits.push(attempt)
        return 0
      },
      onRetry: (info) => heard.push(info),
    })
    assert.deepEqual(
      heard.map((h) => [h.attempt, (h.error as Error).message, h.delayMs]),
      [
        [1, 'failure 1', 0],
        [2, 'failure 2', 0],
        [3, 'failure 3', 0],
      ],
    )
    assert.deepEqual(waits, [1, 2, 3], 'the delay after failure n is delayMs(n)')
  })

  it('waits the project’s backoff unless told otherwise: backoff(1) is 250–500 ms', async () => {
    const { fn } = flaky(1)
    const heard: RetryInfo[] = []
    const t0 = performance.now()
    await retry(fn, { onRetry: (info) => heard.push(info) })
    const waited = performance.now() - t0
    assert.ok(heard[0]!.delayMs >= 250 && heard[0]!.delayMs <= 500, String(heard[0]!.delayMs))
    assert.ok(waited >= heard[0]!.delayMs - 5, `waited ${waited} ms`)
    for (let n = 1; n <= 10; n++) {
      const cap = Math.min(30_000, 500 * 2 ** (n - 1))
      const d = backoff(n)
      assert.ok(d >= cap / 2 && d <= cap, `backoff(${n}) = ${d}`)
    }
  })

  it('gives up when stop says so, rejecting with that error, without onRetry', async () => {
    const { fn, tries } = flaky(10)
    const heard: number[] = []
    await assert.rejects(
      retry(fn, {
        delayMs: instant,
        stop: (error, attempt) => attempt >= 3 && (error as Error).message === 'failure 3',
        onRetry: ({ attempt }) => heard.push(attempt),
      }),
      /failure 3/,
    )
    assert.equal(tries.length, 3)
    assert.deepEqual(heard, [1, 2])
  })

  it('stops at once when the signal aborts during a wait, rejecting with the last error', async () => {
    const { fn, tries } = flaky(10)
    const controller = new AbortController()
    const t0 = performance.now()
    const retrying = retry(fn, { signal: controller.signal, delayMs: () => 60_000 })
    await sleep(20)
    controller.abort()
    await assert.rejects(retrying, /failure 1/)
    assert.ok(performance.now() - t0 < 1000, 'the wait ended with the abort')
    assert.equal(tries.length, 1)
  })

  it('with the signal already aborted, still tries once and does not retry', async () => {
    const controller = new AbortController()
    controller.abort()
    const failing = flaky(1)
    await assert.rejects(retry(failing.fn, { signal: controller.signal, delayMs: instant }), /failure 1/)
    assert.equal(failing.tries.length, 1)
    assert.equal(await retry(flaky(0, 'ok').fn, { signal: controller.signal }), 'ok')
  })

  it('a try that lasted longer than healthyAfterMs counts as a first failure again', async () => {
    const attempts: number[] = []
    let tries = 0
    const fn = async () => {
      tries++
      // The third try runs "healthy" for a while before it fails.
      if (tries === 3) await sleep(60)
      if (tries < 5) throw new Error(`failure ${tries}`)
    }
    await retry(fn, {
      delayMs: instant,
      healthyAfterMs: 40,
      onRetry: ({ attempt }) => attempts.push(attempt),
    })
    assert.deepEqual(attempts, [1, 2, 1, 2])
  })
})
