import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import { createPool } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { count, isolatedConfig, log } from '../helpers.ts'

describe('the HTTP API', () => {
  it('serves /sensor-data with limit and station filters, and 400 problem+json for bad parameters', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 400, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, auth: 'off', logger: false })
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

    // A path that exists, with a method it does not answer: 405 and what it does answer.
    for (const method of ['DELETE', 'POST', 'QUERY', 'TRACE'] as const) {
      const res = await app.inject({ method, url: '/stations/chassis/latest' })
      assert.equal(res.statusCode, 405, method)
      assert.equal(res.headers.allow, 'GET, HEAD', method)
      assert.equal(res.json().code, 'METHOD_NOT_ALLOWED', method)
    }
  })

  it('publishes an OpenAPI 3.1 document, interactive docs and a health check over a real socket', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({ pool, auth: 'off', logger: false })
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

describe('the HTTP API beyond the reference endpoint', () => {
  it('filters by reading time, pages with a Link cursor, and refuses hostile parameters', async (t) => {
    const { config, pool } = await isolatedConfig(t, {
      simCount: 300,
      simSensorsPerStation: 1,
      simIntervalMs: 1000,
    })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())

    // Cursor pages cover every row exactly once, newest first.
    const seen: number[] = []
    let url: string | undefined = '/sensor-data?limit=70'
    while (url) {
      const res: Awaited<ReturnType<typeof app.inject>> = await app.inject({ url })
      assert.equal(res.statusCode, 200)
      seen.push(...(res.json() as { id: number }[]).map((r) => r.id))
      url = /<([^>]+)>; rel="next"/.exec(String(res.headers.link ?? ''))?.[1]
    }
    assert.equal(seen.length, 300)
    assert.equal(new Set(seen).size, 300)
    assert.ok(seen.every((id, i) => i === 0 || id < seen[i - 1]!))

    // A time window, given as epoch seconds or as ISO 8601, gives the same rows.
    const { rows } = await pool.query<{ t: number }>(
      `SELECT extract(epoch FROM reading_time)::float8 AS t FROM sensor_data ORDER BY reading_time LIMIT 1 OFFSET 100`,
    )
    const since = rows[0]!.t
    const until = since + 60
    const expected = await pool.query(
      `SELECT count(*)::int AS n FROM sensor_data WHERE reading_time >= to_timestamp($1) AND reading_time < to_timestamp($2)`,
      [since, until],
    )
    const byEpoch = (
      await app.inject({ url: `/sensor-data?limit=1000&since=${since}&until=${until}` })
    ).json()
    const byIso = (
      await app.inject({
        url: `/sensor-data?limit=1000&since=${new Date(since * 1000).toISOString().replace('Z', '')}${String(Math.round((since * 1e6) % 1000)).padStart(3, '0')}Z&until=${new Date(until * 1000).toISOString()}`,
      })
    ).json()
    assert.equal(byEpoch.length, expected.rows[0].n)
    assert.ok(byEpoch.length > 0)
    assert.equal(byIso.length, byEpoch.length)

    for (const [bad, parameter] of [
      ['since=yesterday', 'since'],
      ['until=2026-13-45', 'until'],
      ["since=2026-01-01';DROP TABLE sensor_data;--", 'since'],
      ['before_id=-1', 'before_id'],
      ['before_id=99999999999999999999999', 'before_id'],
      ['limit=1&limit=2', 'limit'],
      ['station=paint&station=battery', 'station'],
    ]) {
      const res = await app.inject({ url: `/sensor-data?${bad}` })
      assert.equal(res.statusCode, 400, bad)
      assert.match(res.headers['content-type'] as string, /problem\+json/)
      assert.match(res.json().detail, new RegExp(parameter), bad)
    }
    assert.equal(
      await count(pool, 'SELECT count(*) AS n FROM sensor_data'),
      300,
      'nothing reached SQL as text',
    )
  })

  it('serves the catalog, the latest reading per station, counts per station, and readiness', async (t) => {
    const { config, pool } = await isolatedConfig(t, {
      simCount: 40,
      simSensorsPerStation: 1,
      simIntervalMs: 1000,
    })
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())

    const catalog = (await app.inject({ url: '/stations' })).json() as {
      name: string
      fields: { name: string; unit?: string; spec?: { min: number } }[]
    }[]
    assert.deepEqual(catalog.map((s) => s.name).sort(), ['battery', 'chassis', 'paint', 'quality'])
    const thickness = catalog
      .find((s) => s.name === 'paint')!
      .fields.find((f) => f.name === 'paint_thickness')!
    assert.equal(thickness.unit, 'mil')
    assert.equal(thickness.spec?.min, 1)

    const none = await app.inject({ url: '/stations/paint/latest' })
    assert.equal(none.statusCode, 404)
    assert.equal(none.json().code, 'NOT_FOUND')
    assert.equal((await app.inject({ url: '/stations/welding/latest' })).statusCode, 400)
    const notYet = (await app.inject({ url: '/ready' })).json()
    assert.equal(notYet.database, 'ok')
    assert.equal(notYet.etl.last_commit_at, null)
    assert.equal(notYet.etl.lag, null, 'no ETL yet: the lag is unknown')

    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const latest = await app.inject({ url: '/stations/paint/latest' })
    assert.equal(latest.statusCode, 200)
    const newest = await pool.query(`SELECT max(id)::int AS id FROM sensor_data WHERE station = 'paint'`)
    assert.equal(latest.json().id, newest.rows[0].id)
    assert.equal(latest.json().station, 'paint')

    const counts = (await app.inject({ url: '/stats/counts' })).json()
    assert.equal(counts.stations.length, 4)
    assert.equal(
      counts.stations.reduce((n: number, s: { records: number }) => n + s.records, 0),
      40,
    )
    const empty = (
      await app.inject({ url: '/stats/counts?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z' })
    ).json()
    assert.ok(empty.stations.every((s: { records: number }) => s.records === 0))
    // An inverted window is empty, as since/until on /sensor-data: its bounds are in the answer.
    const inverted = await app.inject({ url: '/stats/counts?from=2099-01-02&to=2099-01-01' })
    assert.equal(inverted.statusCode, 200)
    assert.ok(inverted.json().stations.every((s: { records: number }) => s.records === 0))
    assert.equal(inverted.json().from, '2099-01-02T00:00:00.000Z')
    // Every form the schema allows means a time; the ones it refuses are a 400 that says the forms.
    const forms = await app.inject({ url: '/stats/counts?from=0001-01-01&to=1998-12-31T23:59:60z' })
    assert.equal(forms.statusCode, 200)
    assert.equal(forms.json().to, '1999-01-01T00:00:00.000Z')
    const form = await app.inject({ url: '/stats/counts?from=2026-01-31T08:00' })
    assert.equal(form.statusCode, 400)
    assert.match(form.json().detail, /^from: must be an RFC 3339 date-time with its zone .* or epoch seconds/)

    const ready = (await app.inject({ url: '/ready' })).json()
    assert.ok(ready.etl.seconds_since >= 0 && ready.etl.seconds_since < 60)
    assert.equal(ready.etl.lag, 0, 'a finished bounded run leaves no lag')
    assert.ok(ready.etl.lag_as_of, 'the end offsets the lag is computed from are recorded')
  })

  it('answers 503 DATABASE_UNAVAILABLE, as problem+json, while PostgreSQL cannot be reached', async (t) => {
    // Nothing listens on port 1: every query fails to connect.
    const pool = createPool('postgres://evf@127.0.0.1:1/evf', { max: 1 })
    t.after(() => pool.end())
    const app = await buildApp({ pool, auth: 'off', logger: false, config: { apiCacheMs: 0 } })
    t.after(() => app.close())
    for (const url of ['/sensor-data', '/ready']) {
      const res = await app.inject(url)
      assert.equal(res.statusCode, 503, url)
      assert.match(res.headers['content-type'] as string, /problem\+json/)
      assert.equal(res.json().code, 'DATABASE_UNAVAILABLE', url)
    }
  })
})
