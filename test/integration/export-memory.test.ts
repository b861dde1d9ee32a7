import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { issueToken } from '../../src/api/index.ts'
import { freePort } from '../../src/services/index.ts'
import { heapFlags, SEMI_SPACE_MB } from '../../src/shared/supervisor.ts'
import { cli, isolatedConfig, sleep } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

const ROWS = 1_000_000
/** Peak RSS of the whole API process (the issue's budget is 200 MB), and its V8 heap cap. */
const BOUND_MB = 180
const HEAP_MB = 64

const rssMb = (pid: number): number => {
  const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]
  return Number(kb ?? 0) / 1024
}

/** Reads a response body to the end without keeping it; returns bytes and lines. */
async function drain(res: Response): Promise<{ bytes: number; lines: number }> {
  let bytes = 0
  let lines = 0
  const reader = res.body!.getReader()
  for (;;) {
    const { value, done } = await reader.read()
    if (done) break
    bytes += value.length
    for (let i = value.indexOf(10); i >= 0; i = value.indexOf(10, i + 1)) lines++
  }
  return { bytes, lines }
}

describe('/export at scale', () => {
  it(`streams ${ROWS.toLocaleString('en')} readings as NDJSON and CSV from an API process that stays under ${BOUND_MB} MB`, async (t) => {
    const { config, pool } = await isolatedConfig(t)
    // Readings generated in SQL over the last 6 days (the ETL's shape, fewer fields suffice here).
    await pool.query(`SELECT sensor_data_ensure_partitions(now() - interval '7 days', now())`)
    const client = await pool.connect()
    await client.query('SET statement_timeout = 0')
    await client.query(
      `INSERT INTO sensor_data (station, data, reading_time, source_topic, source_partition, source_offset)
       SELECT 'paint',
              jsonb_build_object('station', 'paint', 'timestamp', extract(epoch FROM rt), 'booth_temp', 22.1,
                                 'booth_humidity', 55.5, 'paint_thickness', round((1.2 + random() / 10)::numeric, 3),
                                 'processed_at', rt + interval '1 second'),
              rt, 'sensor.paint', 0, g
       FROM generate_series(1, ${ROWS}) g, LATERAL (SELECT now() - (g * interval '0.5 second') AS rt) t`,
    )
    await client.query('RESET statement_timeout')
    client.release()
    // The API as production runs it (`stack up`'s V8 flags), in its own process, with an old space
    // too small to hold the export.
    const port = await freePort()
    const api = cli(
      ['api'],
      {
        DATABASE_URL: config.databaseUrl,
        EVF_API_PORT: String(port),
        EVF_LOG_LEVEL: 'warn',
      },
      heapFlags(HEAP_MB, SEMI_SPACE_MB),
    )
    t.after(() => api.kill('SIGTERM'))
    for (let i = 0; i < 100; i++) {
      if (
        await fetch(`http://127.0.0.1:${port}/health`).then(
          (r) => r.ok,
          () => false,
        )
      )
        break
      await sleep(100)
    }
    // An export token, as a script would hold one.
    const { token } = await issueToken(pool, 'api', 'export-memory', ['export'])
    rememberSecret(token)
    for (const url of [
      '/export?format=ndjson&from=2000-01-01',
      '/export?format=csv&station=paint&from=2000-01-01',
    ]) {
      let peak = rssMb(api.pid!)
      const sampler = setInterval(() => {
        peak = Math.max(peak, rssMb(api.pid!))
      }, 20)
      // A failed assertion must not leave the sampler keeping the test's process alive.
      sampler.unref()
      const res = await fetch(`http://127.0.0.1:${port}${url}`, {
        headers: { authorization: `Bearer ${token}` },
      })
      assert.equal(res.status, 200, url)
      const { bytes, lines } = await drain(res)
      clearInterval(sampler)
      const header = url.includes('csv') ? 1 : 0
      assert.equal(lines, ROWS + header, url)
      assert.ok(
        bytes / 2 ** 20 > HEAP_MB,
        `the export (${Math.round(bytes / 2 ** 20)} MB) would not fit in the API's heap`,
      )
      assert.ok(
        peak < BOUND_MB,
        `${url}: the API's RSS peaked at ${peak.toFixed(0)} MB for ${Math.round(bytes / 2 ** 20)} MB sent`,
      )
      t.diagnostic(`${url}: ${Math.round(bytes / 2 ** 20)} MB sent, API peak RSS ${peak.toFixed(0)} MB`)
    }
  })
})
