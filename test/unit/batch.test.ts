import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { describe, it } from 'node:test'
import { BatchReader } from '../../src/etl/batch.ts'
import { sleep } from '../helpers.ts'

/**
 * A source shaped like the Kafka client's consumer stream: each `_read` starts one asynchronous
 * fetch of `perFetch` items, fetches again while the buffer has room, and — as the client does —
 * fetches nothing while the stream has no reader (`readableFlowing === null`).
 */
function kafkaLikeStream(perFetch: number): Readable {
  let next = 0
  let fetching = false
  const stream: Readable = new Readable({
    objectMode: true,
    highWaterMark: 16,
    read() {
      if (stream.readableFlowing === null || fetching) return
      fetching = true
      setTimeout(() => {
        fetching = false
        let room = true
        for (let i = 0; i < perFetch; i++) room = stream.push(next++)
        if (room) process.nextTick(() => stream.read(0))
      }, 1)
    },
  })
  return stream
}

describe('BatchReader', () => {
  it('keeps a consumer-like stream fetching across long pauses between batches', async () => {
    const reader = new BatchReader<number>(kafkaLikeStream(10))
    const seen: number[] = []
    for (let i = 0; i < 8; i++) {
      const batch = await reader.next(25, 20, 500)
      assert.ok(batch.length > 0, `batch ${i} came back empty: the stream stopped fetching`)
      seen.push(...batch)
      await sleep(30) // the previous batch being committed, with nobody reading
    }
    reader.close()
    assert.deepEqual(
      seen,
      seen.map((_, i) => i),
      'items in order, none lost or repeated',
    )
  })

  it('returns a full batch at once, a partial one after the linger, an empty one after the idle time', async () => {
    const stream = new Readable({ objectMode: true, read() {} })
    const reader = new BatchReader<number>(stream)
    for (let i = 0; i < 7; i++) stream.push(i)
    assert.deepEqual(await reader.next(5, 1000, 1000), [0, 1, 2, 3, 4])
    let t = Date.now()
    assert.deepEqual(await reader.next(5, 50, 1000), [5, 6])
    assert.ok(Date.now() - t >= 45, 'waited for the linger')
    t = Date.now()
    assert.deepEqual(await reader.next(5, 1000, 60), [])
    assert.ok(Date.now() - t >= 55, 'waited for the idle time')
    reader.close()
  })

  it('returns early on abort and on end, and rejects with the stream error', async () => {
    const stream = new Readable({ objectMode: true, read() {} })
    const reader = new BatchReader<number>(stream)
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 20)
    const t = Date.now()
    assert.deepEqual(await reader.next(5, 5000, 5000, controller.signal), [])
    assert.ok(Date.now() - t < 1000)
    stream.push(1)
    stream.push(null)
    assert.deepEqual(await reader.next(5, 5000, 5000), [1])

    const failing = new Readable({ objectMode: true, read() {} })
    const r2 = new BatchReader<number>(failing)
    setTimeout(() => failing.destroy(new Error('broker gone')), 10)
    await assert.rejects(r2.next(5, 5000, 5000), /broker gone/)
  })
})

describe('BatchReader.each', () => {
  it('hands each item over as it is read, lets the event loop run every few items, and answers how many', async () => {
    const stream = new Readable({ objectMode: true, read() {} })
    const reader = new BatchReader<number>(stream)
    for (let i = 0; i < 10; i++) stream.push(i)
    const taken: number[] = []
    let ranAt = -1
    setImmediate(() => {
      ranAt = taken.length
    })
    const n = await reader.each(8, 1000, 1000, (i) => taken.push(i), undefined, 2)
    reader.close()
    assert.equal(n, 8)
    assert.deepEqual(taken, [0, 1, 2, 3, 4, 5, 6, 7])
    assert.equal(ranAt, 2, 'other work ran after the first two items, before the rest')
  })
})
