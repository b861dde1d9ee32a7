/**
 * `npm run bench:startup`: how long `stack up` takes, step by step, on a first start (empty data
 * directory: initdb, Kafka storage format) and on a warm start (same data), and how long until
 * every station's reading is served at /sensor-data. Runs the built CLI as `npm start` does.
 * Prints both runs and the warm ÷ first ratio, and appends them to docs/benchmarks-history.md.
 * (About a minute; it has no shorter mode.)
 */
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../src/services/index.ts'
import { sleep } from '../src/shared/time.ts'
import {
  assertRunning,
  benchDir,
  cleanEnv,
  cleanupNow,
  ensureDist,
  progress,
  publish,
  ratio,
  runBench,
  spawnStack,
  table,
} from './harness/index.ts'

const cacheDir = benchDir('bench-startup')
const dataDir = join(cacheDir, 'data')

interface Run {
  steps: Record<string, number>
  banner: number
  allStations: number
}

async function startOnce(which: string): Promise<Run> {
  const apiPort = await freePort()
  const t0 = performance.now()
  const ports = ['--kafka-port', '39192', '--kafka-controller-port', '39193', '--api-port', String(apiPort)]
  const stack = spawnStack(['--data-dir', dataDir, ...ports], {
    logFile: join(cacheDir, `stack-up-${which}.log`),
    stdout: 'pipe',
    // Time to the first reading over HTTP, on loopback: no login in the way.
    env: { ...cleanEnv(), EVF_SIM_INTERVAL_MS: '1000', EVF_API_AUTH: 'off' },
  })
  let out = ''
  stack.child.stdout!.on('data', (d) => (out += d))
  try {
    while (!out.includes('pipeline is up')) {
      assertRunning('stack up', stack.child, stack.logFile)
      await sleep(50)
    }
    const banner = performance.now() - t0
    for (;;) {
      const body = (await (await fetch(`http://127.0.0.1:${apiPort}/sensor-data?limit=100`)).json()) as {
        station: string
      }[]
      if (new Set(body.map((r) => r.station)).size === 4) break
      await sleep(100)
    }
    const allStations = performance.now() - t0
    // The step timings are logged right after the banner: read once every station is served.
    const steps = JSON.parse(/timings=(\{[^}]*\})/.exec(out)?.[1] ?? '{}') as Record<string, number>
    return { steps, banner, allStations }
  } finally {
    await cleanupNow(stack.stop)
  }
}

await runBench(async () => {
  ensureDist()
  benchDir('bench-startup', true)
  progress('first start (empty data directory)…')
  const first = await startOnce('first')
  progress('warm start (same data)…')
  const warm = await startOnce('warm')
  rmSync(dataDir, { recursive: true, force: true })

  const s = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`)
  const row = (what: string, a: number | undefined, b: number | undefined) => [
    what,
    s(a),
    s(b),
    ratio(b ?? 0, a || 1),
  ]
  const rows = [
    ...['postgres', 'migrations', 'kafka', 'topics'].map((k) => row(k, first.steps[k], warm.steps[k])),
    row('banner printed (API answering)', first.banner, warm.banner),
    row('every station at /sensor-data', first.allStations, warm.allStations),
  ]
  const out = table(['step', 'first start', 'warm start', 'warm ÷ first'], rows)
  publish('Start-up of `stack up` (after `scripts/setup.mjs`)', out)
})
