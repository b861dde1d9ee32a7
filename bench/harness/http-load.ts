/**
 * One HTTP measurement (bench:api, bench:scale): an endpoint driven by autocannon (`connections`
 * × `duration` s, after a warm-up), sampling the server's RSS and the CPU of the server,
 * PostgreSQL, the load generator, the ingest (when one runs) and everything else on the machine.
 */
import autocannon, { type Client, type Options, type Result } from 'autocannon'
import { cpuDelta, machineBusy, peakMemory, rssKb, treeCpu, treesCpu, waitQuiet } from './proc.ts'
import { checkInterrupted, setOnInterrupt } from './processes.ts'
import { fmt, progress } from './report.ts'

export interface LoadOptions {
  connections: number
  duration: number
  /** seconds of load before the measured window */
  warmup: number
  /** before each run, wait up to this many seconds for the rest of the machine to be idle */
  quietWait: number
}

/** Answers by their `x-cache` header: `hit`, `miss`, or none (the cache was not in the path). */
export interface CacheCount {
  hit: number
  miss: number
  none: number
}

export interface Cpu {
  server: number
  postgres: number
  generator: number
  /** Kafka, the simulator and the ETL, when an ingest runs */
  ingest: number
  other: number
}

export interface Measurement {
  system: 'ours' | 'ours, no cache' | 'FastAPI'
  label: string
  path: string
  result?: Result
  failure?: string
  peakRssMb: number
  cpu: Cpu
  cache?: CacheCount
}

export interface Target {
  system: Measurement['system']
  label: string
  base: string
  path: string
  /** sent with every request (a bearer token) */
  headers?: Record<string, string>
  /** the server's pid */
  pid: number
  /** PostgreSQL's postmaster */
  postmaster: number
}

export interface MeasureOptions {
  /** wait for the machine to be quiet first (default true; under an ingest it never is) */
  quiet?: boolean
  /** count the answers' `x-cache` header in the measured window */
  countCache?: boolean
  /** process trees whose CPU is reported apart, as `ingest` */
  ingestPids?: readonly number[]
  /** called right before and right after the measured window */
  window?: { begin(): Promise<void>; end(): Promise<void> }
}

export const invalid = (m: Measurement): boolean =>
  m.failure !== undefined || !m.result || m.result.non2xx > 0 || m.result.errors > 0 || m.result.timeouts > 0

/** Counts the `x-cache` header of every answer a connection receives. */
const cacheCounter =
  (count: CacheCount) =>
  (client: Client): void => {
    client.on('headers', ({ headers }) => {
      for (let i = 0; i < headers.length; i += 2) {
        if (headers[i]!.toLowerCase() !== 'x-cache') continue
        if (headers[i + 1] === 'hit') count.hit++
        else count.miss++
        return
      }
      count.none++
    })
  }

export async function measure(t: Target, load: LoadOptions, opts: MeasureOptions = {}): Promise<Measurement> {
  checkInterrupted()
  const url = `${t.base}${t.path}`
  const m: Measurement = {
    system: t.system,
    label: t.label,
    path: t.path,
    peakRssMb: 0,
    cpu: { server: 0, postgres: 0, generator: 0, ingest: 0, other: 0 },
  }
  const res = await fetch(url, { headers: t.headers })
  const body = await res.text()
  if (res.status !== 200 || body.length === 0 || body === '[]' || body === '{}') {
    m.failure = `answered ${res.status} with ${body.length ? body.slice(0, 200) : 'an empty body'}`
    progress(`${t.system} ${t.label}: ${m.failure} — not loaded`)
    return m
  }
  if (opts.quiet !== false) await waitQuiet(load.quietWait)
  if (load.warmup > 0) {
    progress(`${t.system} ${t.label}: warm-up ${load.warmup} s…`)
    await drive({ url, headers: t.headers, connections: load.connections, duration: load.warmup })
  }
  checkInterrupted()
  progress(`${t.system} ${t.label}: ${load.connections} connections × ${load.duration} s…`)
  await window(t, m, url, load, opts)
  const r = m.result!
  const c = m.cpu
  progress(
    `  ${fmt(r.requests.average)} req/s, p50 ${r.latency.p50} ms, p99 ${r.latency.p99} ms, ` +
      `non-2xx ${r.non2xx}, errors ${r.errors}, timeouts ${r.timeouts}, RSS peak ${m.peakRssMb.toFixed(0)} MB, ` +
      `CPU server ${c.server.toFixed(2)} PostgreSQL ${c.postgres.toFixed(2)} autocannon ${c.generator.toFixed(2)} ` +
      `${opts.ingestPids ? `ingest ${c.ingest.toFixed(2)} ` : ''}other ${c.other.toFixed(2)}` +
      (m.cache
        ? `, x-cache hit ${fmt(m.cache.hit)} miss ${fmt(m.cache.miss)} none ${fmt(m.cache.none)}`
        : ''),
  )
  return m
}

async function drive(options: Options): Promise<Result> {
  const running = autocannon(options)
  setOnInterrupt(() => running.stop())
  try {
    return await running
  } finally {
    setOnInterrupt(undefined)
  }
}

/** The measured window: autocannon, with the RSS and CPU samplers around it. */
async function window(t: Target, m: Measurement, url: string, load: LoadOptions, opts: MeasureOptions) {
  // the server exiting ends nothing here: the run's errors will say so
  const rss = peakMemory(() => [t.pid], rssKb, 500)
  const ingestPids = opts.ingestPids ?? []
  const cache = opts.countCache ? { hit: 0, miss: 0, none: 0 } : undefined
  await opts.window?.begin()
  const before = {
    server: treeCpu(t.pid),
    pg: treeCpu(t.postmaster),
    ingest: treesCpu(ingestPids),
    gen: process.cpuUsage(),
    busy: machineBusy(),
  }
  const t0 = performance.now()
  m.result = await drive({
    url,
    headers: t.headers,
    connections: load.connections,
    duration: load.duration,
    ...(cache ? { setupClient: cacheCounter(cache) } : {}),
  })
  const elapsed = (performance.now() - t0) / 1000
  const peakRssMb = rss.stop()
  const gen = process.cpuUsage(before.gen)
  const busy = (machineBusy() - before.busy) / elapsed
  const c = m.cpu
  c.server = cpuDelta(before.server, treeCpu(t.pid)) / elapsed
  c.postgres = cpuDelta(before.pg, treeCpu(t.postmaster)) / elapsed
  c.generator = (gen.user + gen.system) / 1e6 / elapsed
  c.ingest = cpuDelta(before.ingest, treesCpu(ingestPids)) / elapsed
  await opts.window?.end()
  m.peakRssMb = peakRssMb
  m.cache = cache
  // whatever else ran on the machine meanwhile (another build or test run skews the figures)
  c.other = Math.max(0, busy - c.server - c.postgres - c.generator - c.ingest)
}
