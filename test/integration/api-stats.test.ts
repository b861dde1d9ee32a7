import assert from 'node:assert/strict'
import { request } from 'node:http'
import { describe, it } from 'node:test'
import { buildApp } from '../../src/api/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { count, isolatedConfig, log, produceRaw, sleep } from '../helpers.ts'

interface Point {
  t: string
  count: number
  min: number
  max: number
  mean: number
  stddev: number | null
}

describe('the HTTP API: statistics, pipeline, export, live stream, hardening', () => {
  it('serves time series from the rollups, the quality summary, the pipeline status and Prometheus metrics', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 800, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    await produceRaw(config, [{ topic: `${config.topicPrefix}paint`, value: '{"station":"paint"' }])
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())

    const ts = await app.inject({ url: '/stats/timeseries?station=paint&field=paint_thickness&bucket=1m' })
    assert.equal(ts.statusCode, 200)
    const body = ts.json() as { unit: string; points: Point[] }
    assert.equal(body.unit, 'mil')
    const total = body.points.reduce((n, p) => n + p.count, 0)
    assert.equal(total, await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE station = 'paint'`))
    // Each point agrees with the rows of its minute, computed independently by PostgreSQL.
    const p = body.points.find((x) => x.count > 2)!
    const { rows } = await pool.query(
      `SELECT count(*)::int AS n, min((data->>'paint_thickness')::float8) AS min, max((data->>'paint_thickness')::float8) AS max,
              avg((data->>'paint_thickness')::float8) AS mean, stddev_samp((data->>'paint_thickness')::float8) AS sd
       FROM sensor_data WHERE station = 'paint' AND reading_time >= $1 AND reading_time < $1::timestamptz + interval '1 minute'`,
      [p.t],
    )
    assert.equal(p.count, rows[0].n)
    assert.equal(p.min, rows[0].min)
    assert.equal(p.max, rows[0].max)
    assert.ok(Math.abs(p.mean - rows[0].mean) < 1e-9)
    assert.ok(Math.abs((p.stddev ?? 0) - rows[0].sd) < 1e-6)
    const hourly = (
      await app.inject({ url: '/stats/timeseries?station=paint&field=paint_thickness&bucket=1h' })
    ).json()
    assert.equal(
      (hourly.points as Point[]).reduce((n, x) => n + x.count, 0),
      total,
    )

    const q = (await app.inject({ url: '/quality/summary?bucket=1m' })).json()
    const results = await pool.query<{ r: string; n: number }>(
      `SELECT data->>'inspection_result' AS r, count(*)::int AS n FROM sensor_data WHERE station = 'quality' GROUP BY 1`,
    )
    for (const r of results.rows) assert.equal(q.counts[r.r], r.n, r.r)
    assert.equal(
      q.inspections,
      await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE station = 'quality'`),
    )
    assert.equal(q.first_pass_yield, q.counts.PASS / q.inspections)
    assert.equal(
      q.defects.total,
      await count(
        pool,
        `SELECT sum((data->>'defect_count')::int) AS n FROM sensor_data WHERE station = 'quality'`,
      ),
    )
    assert.equal(
      (q.series as { PASS: number; FAIL: number; REWORK: number }[]).reduce(
        (n, s) => n + s.PASS + s.FAIL + s.REWORK,
        0,
      ),
      q.inspections,
    )

    // A window longer than 20,000 buckets keeps its newest 20,000, and says where it starts.
    const to = '2026-06-01T00:00:00Z'
    const long = await app.inject({
      url: `/stats/timeseries?station=paint&field=paint_thickness&from=2000-01-01&to=${to}`,
    })
    assert.equal(long.statusCode, 200)
    assert.equal(long.json().from, new Date(Date.parse(to) - 20_000 * 60_000).toISOString())

    // A measurement of another station: no such series.
    const other = await app.inject({ url: '/stats/timeseries?station=chassis&field=paint_thickness' })
    assert.equal(other.statusCode, 404)
    assert.match(
      other.json().detail,
      /chassis has no measurement "paint_thickness"; its numeric ones: bolt_torque/,
    )

    const status = (await app.inject({ url: '/pipeline/status?from=2000-01-01T00:00:00Z' })).json()
    assert.equal(status.lag.total, 0, 'a finished run leaves no lag')
    assert.ok(status.lag.partitions.length >= 4)
    assert.ok(status.lag.partitions.every((x: { end_offset: number | null }) => x.end_offset !== null))
    assert.equal(status.etl.last_run.status, 'ok')
    assert.equal(status.etl.last_run.rows, 800)
    assert.equal(status.etl.last_run.dead_letters, 1)
    assert.equal(status.ingest.rows, 800)
    assert.deepEqual(status.dead_letters.by_reason, [{ reason_code: 'INVALID_JSON', count: 1 }])

    const metrics = await app.inject({ url: '/metrics' })
    assert.equal(metrics.statusCode, 200)
    assert.match(metrics.headers['content-type'] as string, /text\/plain/)
    const text = metrics.body
    assert.match(text, /evf_rows_loaded\{station="paint"\} \d+/)
    assert.match(text, /evf_dead_letters\{reason_code="INVALID_JSON"\} 1/)
    assert.match(text, /evf_consumer_lag\{topic="[^"]+",partition="0"\} 0/)
    assert.match(text, /evf_etl_last_run_success 1/)
    assert.match(text, /evf_http_request_duration_seconds_bucket\{[^}]*route="\/stats\/timeseries"/)

    for (const [url, parameter] of [
      ['/stats/timeseries?station=paint&field=colour', 'field'],
      ['/stats/timeseries?station=quality&field=inspection_result', 'field'],
      ['/stats/timeseries?station=paint', 'field'],
      ['/stats/timeseries?station=paint&field=paint_thickness&bucket=5m', 'bucket'],
      ['/quality/summary?from=2026-02-30T25:00:00Z', 'from'],
      ['/pipeline/status?to=1e99', 'to'],
      ['/export?format=xlsx', 'format'],
    ] as const) {
      const res = await app.inject({ url })
      assert.equal(res.statusCode, 400, url)
      assert.match(res.headers['content-type'] as string, /problem\+json/, url)
      assert.match(res.json().detail, new RegExp(parameter), url)
    }
  })

  it('tells the current ingest rate, from the last seconds’ commits, apart from the window’s average', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 400, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    const ingest = async () =>
      (await app.inject({ url: '/pipeline/status?from=2000-01-01T00:00:00Z' })).json().ingest as {
        rows: number
        rows_per_second: number
        current_rows_per_second: number
        current_sec: number
      }
    // Just loaded: the 400 readings are the last seconds' commits.
    const now = await ingest()
    assert.equal(now.current_sec, 10)
    assert.equal(now.current_rows_per_second, 400 / 10)
    assert.equal(now.rows, 400)
    assert.ok(now.rows_per_second < 0.001, 'the window (since 2000) averages to nearly nothing')
    // Committed 11 s ago: nothing now, the window unchanged.
    await pool.query("UPDATE etl_commits SET committed_at = committed_at - interval '11 seconds'")
    const later = await ingest()
    assert.equal(later.current_rows_per_second, 0)
    assert.equal(later.rows, 400)
  })

  it('streams exports as CSV (typed columns per station) and NDJSON', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 400, simSensorsPerStation: 1 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    const paint = await count(pool, `SELECT count(*) AS n FROM sensor_data WHERE station = 'paint'`)
    const csv = await app.inject({ url: '/export?format=csv&station=paint&from=2000-01-01' })
    assert.equal(csv.statusCode, 200)
    assert.match(csv.headers['content-type'] as string, /text\/csv/)
    assert.match(csv.headers['content-disposition'] as string, /attachment; filename="evf-paint-/)
    const lines = csv.body.trimEnd().split('\n')
    assert.match(lines[0]!, /^id,station,reading_time,.*paint_thickness_mil,paint_thickness_in_spec/)
    assert.equal(lines.length - 1, paint)
    const nd = await app.inject({ url: '/export?format=ndjson&from=2000-01-01' })
    const readings = nd.body
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: number; data: object })
    assert.equal(readings.length, 400)
    assert.equal(new Set(readings.map((r) => r.id)).size, 400)
    // The export's connection went back to the pool with the API's statement timeout.
    const timeouts = await Promise.all(
      Array.from({ length: 4 }, () =>
        pool.query<{ t: string }>('SHOW statement_timeout').then((r) => r.rows[0]!.t),
      ),
    )
    assert.ok(
      timeouts.every((x) => x !== '0'),
      String(timeouts),
    )
  })

  it('delivers a reading loaded after the client connected over Server-Sent Events, and resumes from Last-Event-ID', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 8, simSensorsPerStation: 1 })
    const app = await buildApp({ pool, auth: 'off', logger: false })
    t.after(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const { port } = app.server.address() as { port: number }

    const events: { id: number; station: string }[] = []
    const res = await fetch(`http://127.0.0.1:${port}/sensor-data/stream`)
    assert.equal(res.status, 200)
    assert.match(res.headers.get('content-type') ?? '', /text\/event-stream/)
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    let buffer = ''
    const readUntil = async (n: number) => {
      while (events.length < n) {
        const { value, done } = await reader.read()
        if (done) break
        buffer += decoder.decode(value, { stream: true })
        let i = buffer.indexOf('\n\n')
        while (i >= 0) {
          const block = buffer.slice(0, i)
          buffer = buffer.slice(i + 2)
          const id = /^id: (\d+)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (id && data) events.push({ id: Number(id), station: JSON.parse(data).station })
          i = buffer.indexOf('\n\n')
        }
      }
    }
    // Loaded after the client connected.
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    await readUntil(8)
    await reader.cancel()
    assert.equal(events.length, 8)
    assert.deepEqual(
      events.map((e) => e.id),
      (await pool.query<{ id: number }>('SELECT id FROM sensor_data ORDER BY id')).rows.map((r) => r.id),
    )

    // Resume: a client that saw the 3rd event gets the 5 after it, and only those.
    const third = events[2]!.id
    const resumed = await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: '127.0.0.1', port, path: '/sensor-data/stream', headers: { 'last-event-id': String(third) } },
        (r) => {
          let text = ''
          r.on('data', (c: Buffer) => {
            text += c.toString()
            if ((text.match(/^id: /gm) ?? []).length >= 5) {
              req.destroy()
              resolve(text)
            }
          })
        },
      )
      req.on('error', reject)
      req.end()
    })
    assert.deepEqual(
      [...resumed.matchAll(/^id: (\d+)$/gm)].map((m) => Number(m[1])),
      events.slice(3).map((e) => e.id),
    )
  })

  it('serves repeated reads from its cache and drops the cache when the ETL commits', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 20, simSensorsPerStation: 1 })
    // A long TTL: only a commit can make the second answer below fresh.
    const app = await buildApp({ pool, auth: 'off', logger: false, config: { apiCacheMs: 60_000 } })
    t.after(() => app.close())
    await app.ready()
    const get = () => app.inject({ url: '/sensor-data?limit=1000' })
    for (let i = 0; i < 50 && (await get()).headers['x-cache'] !== 'hit'; i++) await sleep(100)
    const cached = await get()
    assert.equal(cached.headers['x-cache'], 'hit')
    assert.deepEqual(cached.json(), [])
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    let fresh = await get()
    for (let i = 0; i < 50 && fresh.json().length === 0; i++) {
      await sleep(100)
      fresh = await get()
    }
    assert.equal(fresh.json().length, 20, 'the commit emptied the cache')
    assert.equal((await get()).headers['x-cache'], 'hit')
    // /metrics counts what the cache did.
    const metrics = (await app.inject('/metrics')).body
    const counter = (re: RegExp) => Number(re.exec(metrics)?.[1] ?? Number.NaN)
    assert.ok(counter(/^evf_api_cache_requests_total\{result="hit"\} (\d+)$/m) >= 2)
    assert.ok(counter(/^evf_api_cache_requests_total\{result="miss"\} (\d+)$/m) >= 2)
    assert.ok(counter(/^evf_api_cache_invalidations_total (\d+)$/m) >= 1)
    // Bad parameters are still checked before the cache.
    assert.equal((await app.inject({ url: '/sensor-data?limit=0' })).statusCode, 400)
  })

  it('sends security headers, limits the rate and the URL length, and keeps CORS to the configured origins', async (t) => {
    const { pool } = await isolatedConfig(t)
    const app = await buildApp({
      auth: 'off',
      pool,
      logger: false,
      config: { apiRateLimit: 20, apiCorsOrigins: 'https://plant.example' },
    })
    t.after(() => app.close())
    const res = await app.inject({ url: '/health', headers: { origin: 'https://plant.example' } })
    assert.match(res.headers['content-security-policy'] as string, /default-src 'self'/)
    assert.equal(res.headers['x-content-type-options'], 'nosniff')
    assert.equal(res.headers['access-control-allow-origin'], 'https://plant.example')
    const other = await app.inject({ url: '/health', headers: { origin: 'https://evil.example' } })
    assert.equal(other.headers['access-control-allow-origin'], undefined)
    const long = await app.inject({ url: `/sensor-data?station=${'x'.repeat(5000)}` })
    assert.equal(long.statusCode, 400)
    assert.match(long.json().detail, /longer than 4096/)
    let limited: Awaited<ReturnType<typeof app.inject>> | undefined
    for (let i = 0; i < 25 && !limited; i++) {
      const r = await app.inject({ url: '/health' })
      if (r.statusCode === 429) limited = r
    }
    assert.ok(limited, 'the 21st request in a minute is refused')
    assert.match(limited.headers['content-type'] as string, /problem\+json/)
    assert.equal(limited.json().code, 'RATE_LIMITED')
    assert.ok(limited.headers['retry-after'])
  })
})
