import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { isolatedConfig, log } from '../helpers.ts'

describe('the HTTP API', () => {
  it('serves /sensor-data with limit and station filters, and 400 problem+json for bad parameters', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 400, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, logger: false })
    t.after(() => app.close())

    const all = await app.inject({ url: '/sensor-data' })
    assert.equal(all.statusCode, 200)
    assert.match(all.headers['content-type'] as string, /application\/json/)
    assert.equal(all.json().length, 100, 'default limit is 100')
    assert.equal((await app.inject({ url: '/sensor-data?limit=1000' })).json().length, 400)

    for (const station of ['chassis', 'battery', 'paint', 'quality']) {
      const res = await app.inject({ url: `/sensor-data?station=${station}&limit=3` })
      const body = res.json() as { station: string }[]
      assert.equal(body.length, 3)
      assert.ok(body.every((r) => r.station === station))
    }

    const bad: [string, RegExp][] = [
      ['/sensor-data?limit=0', /limit/],
      ['/sensor-data?limit=1001', /limit/],
      ['/sensor-data?limit=ten', /limit/],
      ['/sensor-data?station=welding', /station.*chassis, battery, paint, quality/],
      ["/sensor-data?station=paint'%20OR%201=1--", /station/],
      ['/sensor-data?colour=red', /colour/],
    ]
    for (const [url, detail] of bad) {
      const res = await app.inject({ url })
      assert.equal(res.statusCode, 400, url)
      assert.match(res.headers['content-type'] as string, /application\/problem\+json/, url)
      const p = res.json()
      assert.equal(p.status, 400)
      assert.equal(p.code, 'BAD_PARAMETER')
      assert.match(p.detail, detail, url)
    }

    const missing = await app.inject({ url: '/nope' })
    assert.equal(missing.statusCode, 404)
    assert.equal(missing.json().code, 'NOT_FOUND')
  })

  it('publishes an OpenAPI 3.1 document, interactive docs and a health check over a real socket', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, logger: false })
    t.after(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    assert.ok(address && typeof address === 'object')
    const base = `http://127.0.0.1:${address.port}`

    const health = await fetch(`${base}/health`)
    assert.equal(health.status, 200)
    assert.deepEqual(await health.json(), { status: 'ok' })

    const spec = (await (await fetch(`${base}/docs/json`)).json()) as {
      openapi: string
      paths: Record<string, unknown>
    }
    assert.equal(spec.openapi, '3.1.0')
    assert.ok(spec.paths['/sensor-data'])

    const docs = await fetch(`${base}/docs/`)
    assert.equal(docs.status, 200)
    assert.match(await docs.text(), /swagger/i)

    const empty = await fetch(`${base}/sensor-data`)
    assert.deepEqual(await empty.json(), [], 'an empty database gives an empty list')
  })
})
