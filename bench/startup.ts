/**
 * `npm run bench:startup`: how long `stack up` takes, step by step, on a first start (empty data
 * directory: initdb, Kafka storage format) and on a warm start (same data), and how long until
 * every station's reading is served at /sensor-data. Runs the built CLI as `npm start` does.
 * Prints both runs and the warm ÷ first ratio, and appends them to docs/benchmarks.md.
 */
import { spawn } from 'node:child_process'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { freePort } from '../src/services/index.ts'
import { repoRoot } from '../src/shared/paths.ts'
import { progress, record, table } from './lib.ts'

const dataDir = join(repoRoot, '.cache', 'bench-startup')

interface Run {
  steps: Record<string, number>
  banner: number
  allStations: number
}

async function startOnce(): Promise<Run> {
  const apiPort = await freePort()
  const t0 = performance.now()
  const child = spawn(
    process.execPath,
    [
      'dist/cli.js',
      'stack',
      'up',
      '--data-dir',
      dataDir,
      '--kafka-port',
      '39192',
      '--kafka-controller-port',
      '39193',
      '--api-port',
      String(apiPort),
    ],
    {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'inherit'],
      // Time to the first reading over HTTP, on loopback: no login in the way.
      env: { ...process.env, EVF_SIM_INTERVAL_MS: '1000', EVF_API_AUTH: 'off' },
    },
  )
  let out = ''
  child.stdout.on('data', (d) => (out += d))
  const exited = new Promise((resolve) => child.on('exit', resolve))
  try {
    let banner = 0
    while (!out.includes('pipeline is up')) {
      if (child.exitCode !== null) throw new Error(`stack exited:\n${out}`)
      await new Promise((r) => setTimeout(r, 50))
    }
    banner = performance.now() - t0
    const steps = JSON.parse(/timings=(\{[^}]*\})/.exec(out)?.[1] ?? '{}') as Record<string, number>
    for (;;) {
      const body = (await (await fetch(`http://127.0.0.1:${apiPort}/sensor-data?limit=100`)).json()) as {
        station: string
      }[]
      if (new Set(body.map((r) => r.station)).size === 4) break
      await new Promise((r) => setTimeout(r, 100))
    }
    return { steps, banner, allStations: performance.now() - t0 }
  } finally {
    process.kill(-child.pid!, 'SIGINT')
    await exited
  }
}

rmSync(dataDir, { recursive: true, force: true })
progress('first start (empty data directory)…')
const first = await startOnce()
progress('warm start (same data)…')
const warm = await startOnce()
rmSync(dataDir, { recursive: true, force: true })

const s = (ms: number | undefined) => (ms === undefined ? '—' : `${(ms / 1000).toFixed(2)} s`)
const rows = [
  ...['postgres', 'migrations', 'kafka', 'topics'].map((k) => [
    k,
    s(first.steps[k]),
    s(warm.steps[k]),
    ((warm.steps[k] ?? 0) / (first.steps[k] || 1)).toFixed(2),
  ]),
  [
    'banner printed (API answering)',
    s(first.banner),
    s(warm.banner),
    (warm.banner / first.banner).toFixed(2),
  ],
  [
    'every station at /sensor-data',
    s(first.allStations),
    s(warm.allStations),
    (warm.allStations / first.allStations).toFixed(2),
  ],
]
const out = table(['step', 'first start', 'warm start', 'warm ÷ first'], rows)
process.stdout.write(`${out}\n`)
record('Start-up of `stack up` (after `scripts/setup.mjs`)', out)
