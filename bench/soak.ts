/**
 * `npm run bench:soak`: the continuous pipeline under sustained load, end to end.
 *
 *  1. starts the whole stack as a user would — `node dist/cli.js stack up`, ETL in follow mode —
 *     on its own data dir (.cache/bench-soak/data, fresh every run) and ports (Kafka 29092/29093,
 *     API 28000; PostgreSQL on a free port, found in the stack.json `stack up` writes);
 *  2. the simulator offers `--rate` readings/s (default 10,000) for `--duration` (default 5m): one
 *     reading per sensor every 100 ms on 4 stations, so sensors per station = rate × 100 / 4000,
 *     rounded to the nearest whole sensor (the offered rate printed is the rounded one);
 *  3. meanwhile: a LISTEN client stamps each ETL commit notification (its source ranges), the
 *     lag is sampled every second (Kafka log-end offsets − etl_offsets), and the CPU and RSS of
 *     every component's process tree are read from /proc; a progress line every 10 s on stderr;
 *  4. after the simulator stops, waits for the lag to reach 0 (at most `--drain-timeout`), then
 *     computes the latency reading → queryable in PostgreSQL (one query over the ranges; overall,
 *     and for the readings after the first `--warmup` of load, the ETL's start-up left out), stops
 *     the stack with SIGINT, plots lag and latency to a PNG, prints the results and the targets
 *     (PASS/MISS, never asserted) and appends them to docs/benchmarks-history.md unless
 *     `--no-record`. A short trial: `--rate 400 --duration 20s --warmup 5s --no-record`.
 *
 * `--ramp`: one stack run with `--simulator false`; each step (`--steps`, default
 * 2k,5k,10k,20k,35k,50k,100k/s) runs `node dist/cli.js simulate` next to it for `--step-duration`
 * (60 s) — steps follow each other without a pause, and the ramp stops after the first step the
 * pipeline does not sustain (its backlog would only blur the next). Arguments after `--` go to
 * `stack up` as they are, e.g. `npm run bench:soak -- --rate 2000 -- --etl-workers 2`.
 * Everything started is stopped on success, error and Ctrl-C.
 */
import type { ChildProcess } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { createPool } from '../src/db/index.ts'
import { readKafkaSecrets, scramLogin } from '../src/kafka/index.ts'
import { repoRoot } from '../src/shared/paths.ts'
import {
  benchDir,
  checkPortsFree,
  cleanup,
  duration,
  ensureDist,
  fmt,
  freshDataDir,
  onCleanup,
  positive,
  progress,
  publish,
  runBench,
  startStack,
  stopStack,
} from './harness/index.ts'
import { renderPng, soakSvg } from './plot.ts'
import { LagSampler } from './soak-lag.ts'
import { CommitLog, commitGaps, latencyStats } from './soak-latency.ts'
import { INTERVAL_MS, type Plan, phases, planFor, type Run } from './soak-phases.ts'
import { ProcessMeter } from './soak-procs.ts'
import { logDigest, type Phase, plotData, type Results, reportBody } from './soak-report.ts'

const { values: args, positionals: stackArgs } = parseArgs({
  allowPositionals: true,
  options: {
    rate: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '5m' },
    ramp: { type: 'boolean', default: false },
    steps: { type: 'string', default: '2000,5000,10000,20000,35000,50000,100000' },
    'step-duration': { type: 'string', default: '60s' },
    'drain-timeout': { type: 'string', default: '120s' },
    // readings of the simulator's first seconds, taken while the ETL may still be starting, are
    // left out of the steady-state latency (they stay in the overall figures)
    warmup: { type: 'string', default: '10s' },
    // a trial run: print, do not append to docs/benchmarks-history.md (the plot goes to .cache/bench-soak)
    'no-record': { type: 'boolean', default: false },
  },
})

const RATE = positive('rate', args.rate)
const DURATION_S = Math.round(duration('duration', args.duration))
const STEP_S = Math.round(duration('step-duration', args['step-duration']))
const DRAIN_MS = duration('drain-timeout', args['drain-timeout']) * 1000
const WARMUP_MS = duration('warmup', args.warmup) * 1000
const STEPS = args.steps.split(',').map((s) => positive('steps', s.trim()))
const BUCKET_MS = 5000
const PORTS = { kafka: 29092, controller: 29093, api: 28000 }
const cacheDir = benchDir('bench-soak')
const dataDir = join(cacheDir, 'data')
const settings = { durationS: DURATION_S, stepS: STEP_S, steps: STEPS, drainMs: DRAIN_MS, dataDir, cacheDir }
const { soakPhase, rampPhases, drain } = phases(settings)

function stackFlags(plan: Plan): string[] {
  const flags = [
    ['--data-dir', dataDir],
    ['--kafka-port', PORTS.kafka],
    ['--kafka-controller-port', PORTS.controller],
    ['--api-port', PORTS.api],
    ['--etl-mode', 'continuous'],
    ['--orchestrator', 'builtin'],
    ['--log-level', 'info'],
    ['--sim-interval-ms', INTERVAL_MS],
  ]
  if (args.ramp) flags.push(['--simulator', 'false'])
  else flags.push(['--sim-sensors-per-station', plan.sensorsPerStation], ['--sim-duration-sec', DURATION_S])
  return [...flags.flatMap(([k, v]) => [String(k), String(v)]), ...stackArgs]
}

/** Starts the stack and, as soon as it names PostgreSQL and Kafka, the listener, sampler and meter. */
async function startRun(plan: Plan): Promise<Run> {
  let meter: ProcessMeter | undefined
  let ready: Omit<Run, 'stack'> | undefined
  let lastProgress = 0
  const stack = await startStack({
    args: stackFlags(plan),
    dataDir,
    apiPort: PORTS.api,
    logFile: join(cacheDir, 'stack-up.log'),
    onStart: ({ child, stop }) => {
      meter = new ProcessMeter(child.pid!)
      stop.run = () => stopAndSweep(child, meter!)
    },
    onEndpoints: async ({ databaseUrl, kafkaBrokers }) => {
      const pool = createPool(databaseUrl, { max: 2, statementTimeoutMs: 0, application: 'bench-soak' })
      onCleanup('the bench’s PostgreSQL pool', () => pool.end())
      const listener = new CommitLog(databaseUrl)
      await listener.start()
      onCleanup('the LISTEN client', () => listener.stop())
      const admin = readKafkaSecrets(dataDir)?.admin ?? ''
      const sampler = new LagSampler(scramLogin(kafkaBrokers, 'admin', admin), pool)
      onCleanup('the lag sampler', async () => {
        await sampler.stop()
      })
      const t0 = Date.now()
      lastProgress = t0
      ready = { pool, listener, sampler, meter: meter!, t0 }
      sampler.start(1000, (s) => {
        meter!.sample()
        if (s.t - lastProgress < 10_000) return
        lastProgress = s.t
        const r = sampler.rates(s.t - 10_000, s.t)
        const last = listener.commits.at(-1)
        progress(
          `${fmt((s.t - t0) / 1000)} s: produced ${fmt(r.produced)}/s, loaded ${fmt(r.committed)}/s, lag ${fmt(s.lag)}` +
            `, last commit ${last ? `${fmt((s.t - last) / 1000, 1)} s ago` : 'none yet'}`,
        )
      })
    },
  })
  if (!ready) throw new Error('stack up answered /health without a stack.json')
  progress(`stack up (pid ${stack.pid}): API ${stack.apiBase}, Kafka ${stack.kafkaBrokers}`)
  return { stack, ...ready }
}

/** How `stack up` stopped on its SIGINT: its exit code, how long it took, what outlived it. */
let stopped: Results['stop']
async function stopAndSweep(child: ChildProcess, meter: ProcessMeter): Promise<void> {
  const t = performance.now()
  const code = await stopStack(child)
  const killed = meter.killLeftovers()
  stopped = { code, ms: performance.now() - t, leftovers: killed.length }
  progress(`stack up exited with code ${code} after ${fmt(stopped.ms / 1000, 1)} s`)
  if (killed.length) progress(`killed processes that outlived the stack: ${killed.join(', ')}`)
}

/** A phase's figures from the samples of its window (p99 comes later, from the latency query). */
async function collect(run: Run, phases: Phase[], drained: Results['drain']): Promise<Results> {
  const end = Date.now()
  const last = await run.sampler.stop()
  run.meter.sample()
  progress('computing the latency of every loaded row in PostgreSQL…')
  const latency = await latencyStats(
    run.pool,
    run.listener.ranges,
    { t0: run.t0, end, bucketMs: BUCKET_MS, steadyFrom: phases[0]!.from + WARMUP_MS },
    phases,
  )
  latency.windows.forEach((w, i) => {
    phases[i]!.p99 = w.p99
  })
  const { rows } = await run.pool.query<{ loaded: number; dead: number }>(
    'SELECT (SELECT count(*) FROM sensor_data)::float8 AS loaded, (SELECT count(*) FROM dead_letters)::float8 AS dead',
  )
  const samples = run.sampler.samples
  return {
    mode: args.ramp ? 'ramp' : 'soak',
    command: `npm run bench:soak -- ${process.argv.slice(2).join(' ')}`.trim(),
    intervalMs: INTERVAL_MS,
    bucketMs: BUCKET_MS,
    warmupMs: WARMUP_MS,
    t0: run.t0,
    end,
    phases,
    produced: phases.reduce((n, p) => n + p.produced, 0),
    kafkaEnd: last?.produced ?? samples.at(-1)?.produced ?? 0,
    loaded: rows[0]!.loaded,
    deadLettered: rows[0]!.dead,
    committed: last?.committed ?? samples.at(-1)?.committed ?? 0,
    latency,
    gap: commitGaps(run.listener.commits, samples, run.t0, end),
    maxLag: Math.max(0, ...samples.map((s) => s.lag)),
    drain: drained,
    usage: run.meter.usage(),
    etlLog: logDigest(join(dataDir, 'logs', 'etl.log')),
    listenerDisconnects: run.listener.disconnects,
  }
}

async function main(): Promise<void> {
  const plans = args.ramp ? STEPS.map(planFor) : [planFor(RATE)]
  mkdirSync(cacheDir, { recursive: true })
  await freshDataDir(dataDir)
  await checkPortsFree([PORTS.kafka, PORTS.controller, PORTS.api])
  const run = await startRun(plans[0]!)
  const phases = args.ramp ? await rampPhases(run) : await soakPhase(run, plans[0]!)
  const drained = await drain(run, phases.at(-1)!.to)
  const results = await collect(run, phases, drained)
  const samples = run.sampler.samples
  await cleanup()
  results.stop = stopped

  const name = args.ramp ? 'soak-ramp' : `soak-${RATE}`
  const title = args.ramp
    ? `bench:soak --ramp, steps of ${STEP_S} s`
    : `bench:soak, ${fmt(plans[0]!.offered)} readings/s for ${DURATION_S} s`
  const png = join(args['no-record'] ? cacheDir : join(repoRoot, 'docs', 'img'), `${name}.png`)
  const written = await renderPng(soakSvg(plotData(results, samples, title)), png)
  progress(`plot: ${written}`)
  const image = args['no-record']
    ? `Plot: ${relative(repoRoot, written)}`
    : `![${title}: lag and latency over time](${relative(join(repoRoot, 'docs'), written)})`
  publish(title, reportBody(results, image), { noRecord: args['no-record'] })
}

await runBench(async () => {
  ensureDist()
  await main()
})
