/**
 * `npm run bench:alarms`: the alarm evaluator on the live stream, with every rule on.
 *
 *  1. starts the whole stack (`node dist/cli.js stack up`, continuous ETL) with the evaluator out
 *     of the API (`--alarm-evaluator off`), the simulator offering `--rate` readings/s (10,000) with
 *     a spike (a reading outside the spec limits) at `--fault-rate` (0.0005: 5 a second), and
 *     `evf alarms run` as a process of its own, so that its CPU is its own;
 *  2. switches every rule on: spec and stale (on by default), the four Western Electric rules on
 *     every measurement (off by default), the pipeline rules;
 *  3. after `--warmup` (20 s: the SPC baselines are learned, the ETL is at speed), measures for
 *     `--duration` (60 s): the readings loaded, the CPU of the evaluator and of the ETL (the baseline,
 *     measured in the same run), and, from the history, reading → alarm raised for every raise in the
 *     window (`recorded_at − at`: the reading's time to the evaluator's commit);
 *  4. prints the figures and the target (p99 ≤ 2 s), never asserted, and appends them to
 *     docs/benchmarks-history.md unless `--no-record`.
 */
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { catalogRules } from '../src/alarms/rules.ts'
import { catalogFromFile } from '../src/catalog/index.ts'
import { createPool, type Pool, seedRules } from '../src/db/index.ts'
import {
  benchDir,
  checkPortsFree,
  childPids,
  cleanEnv,
  cleanup,
  cmdline,
  cpuWithReaped,
  distCli,
  duration,
  ensureDist,
  fmt,
  freshDataDir,
  onCleanup,
  positive,
  progress,
  publish,
  ratio,
  runBench,
  startChild,
  startStack,
  table,
  treesTotal,
} from './harness/index.ts'

const { values: args } = parseArgs({
  options: {
    rate: { type: 'string', default: '10000' },
    duration: { type: 'string', default: '60s' },
    warmup: { type: 'string', default: '20s' },
    'fault-rate': { type: 'string', default: '0.0005' },
    'no-record': { type: 'boolean', default: false },
  },
})
const RATE = positive('rate', args.rate)
const DURATION_MS = duration('duration', args.duration) * 1000
const WARMUP_MS = duration('warmup', args.warmup) * 1000
const FAULT_RATE = Number(args['fault-rate'])
const INTERVAL_MS = 100
const STATIONS = 4
const SENSORS = Math.max(1, Math.round((RATE * INTERVAL_MS) / 1000 / STATIONS))
const PORTS = { kafka: 29192, controller: 29193, api: 28100 }
const cacheDir = benchDir('bench-alarms')
const dataDir = join(cacheDir, 'data')

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The ETL's processes: `etl …` children of the stack, with their workers. */
const etlRoots = (stackPid: number) =>
  childPids(stackPid).filter((pid) => /cli\.js\s+etl\b/.test(cmdline(pid)))

const loadedSoFar = async (pool: Pool) =>
  Number(
    (await pool.query<{ n: string }>('SELECT coalesce(sum(next_offset), 0)::text AS n FROM etl_offsets'))
      .rows[0]!.n,
  )

async function main(): Promise<void> {
  await checkPortsFree(Object.values(PORTS))
  await freshDataDir(dataDir)
  let pool: Pool | undefined
  const stack = await startStack({
    args: [
      ...[
        '--data-dir',
        dataDir,
        '--kafka-port',
        String(PORTS.kafka),
        '--kafka-controller-port',
        String(PORTS.controller),
      ],
      ...['--api-port', String(PORTS.api), '--etl-mode', 'continuous', '--orchestrator', 'builtin'],
      ...['--sim-interval-ms', String(INTERVAL_MS), '--sim-sensors-per-station', String(SENSORS)],
      ...['--sim-fault-rate', String(FAULT_RATE), '--alarm-evaluator', 'off', '--log-level', 'info'],
      ...['--sim-duration-sec', String(Math.ceil((WARMUP_MS + DURATION_MS) / 1000) + 30)],
    ],
    dataDir,
    apiPort: PORTS.api,
    logFile: join(cacheDir, 'stack-up.log'),
    onStart: () => undefined,
    onEndpoints: async ({ databaseUrl }) => {
      pool = createPool(databaseUrl, { max: 2, statementTimeoutMs: 0, application: 'bench-alarms' })
      onCleanup('the bench’s PostgreSQL pool', () => pool!.end())
    },
  })
  const db = pool!
  // Every rule on, before the evaluator's first look.
  const rules = catalogRules(catalogFromFile()).map((r) => ({ ...r, enabled: true }))
  await seedRules(db, rules)
  await db.query('UPDATE alarm_rules SET enabled = true')
  progress(`${rules.length} rules, all on; starting evf alarms run`)
  const evaluator = startChild('the evaluator', process.execPath, [distCli, 'alarms', 'run'], {
    env: { ...cleanEnv(), DATABASE_URL: stack.databaseUrl, EVF_LOG_LEVEL: 'info' },
    logFile: join(cacheDir, 'alarms.log'),
  })
  const evalPid = evaluator.child.pid!
  await sleep(WARMUP_MS)
  const t1 = new Date()
  const before = {
    etl: treesTotal(etlRoots(stack.pid)),
    evaluator: cpuWithReaped(evalPid),
    loaded: await loadedSoFar(db),
  }
  for (let left = DURATION_MS; left > 0; left -= 10_000) {
    await sleep(Math.min(10_000, left))
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM alarm_events WHERE recorded_at >= $1`,
      [t1],
    )
    progress(
      `${fmt((Date.now() - t1.getTime()) / 1000)} s: ${fmt(((await loadedSoFar(db)) - before.loaded) / ((Date.now() - t1.getTime()) / 1000))} readings/s loaded, ${rows[0]!.n} transitions`,
    )
  }
  const t2 = new Date()
  const after = {
    etl: treesTotal(etlRoots(stack.pid)),
    evaluator: cpuWithReaped(evalPid),
    loaded: await loadedSoFar(db),
  }
  const lat = (
    await db.query<{
      n: number
      p50: number | null
      p99: number | null
      max: number | null
      transitions: number
    }>(
      `SELECT count(*) FILTER (WHERE to_state = 'UNACK')::int AS n,
              percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - at)) FILTER (WHERE to_state = 'UNACK') AS p50,
              percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM recorded_at - at)) FILTER (WHERE to_state = 'UNACK') AS p99,
              max(extract(epoch FROM recorded_at - at)) FILTER (WHERE to_state = 'UNACK')::float8 AS max,
              count(*)::int AS transitions
       FROM alarm_events WHERE at >= $1 AND at < $2 AND kind IN ('spec', 'spc')`,
      [t1, t2],
    )
  ).rows[0]!
  const behind = (
    await db.query<{ n: string }>(
      `SELECT coalesce(sum(e.next_offset - coalesce(a.next_offset, 0)), 0)::text AS n
       FROM etl_offsets e LEFT JOIN alarm_offsets a USING (topic, partition)`,
    )
  ).rows[0]!.n
  const loaded = after.loaded - before.loaded
  const seconds = (t2.getTime() - t1.getTime()) / 1000
  const per1000 = (cpu: number) => (cpu / loaded) * 1000
  const evalCpu = after.evaluator - before.evaluator
  const etlCpu = after.etl - before.etl
  await cleanup()
  const body = [
    `\`npm run bench:alarms -- ${process.argv.slice(2).join(' ')}\`: ${fmt(RATE)} readings/s offered (${SENSORS} sensors × ${STATIONS} stations every ${INTERVAL_MS} ms), spikes at ${FAULT_RATE}, every rule on (${rules.length}), ${fmt(seconds)} s measured after ${fmt(WARMUP_MS / 1000)} s.`,
    '',
    table(
      ['figure', 'value', 'baseline (same run)', 'ratio'],
      [
        ['readings loaded /s', fmt(loaded / seconds), '', ''],
        [
          'evaluator CPU-s per 1,000 readings',
          fmt(per1000(evalCpu), 4),
          `ETL ${fmt(per1000(etlCpu), 4)}`,
          `${ratio(evalCpu, etlCpu)} of the ETL's`,
        ],
        [
          'evaluator CPU, % of one core',
          fmt((evalCpu / seconds) * 100, 1),
          `ETL ${fmt((etlCpu / seconds) * 100, 1)}`,
          '',
        ],
        ['alarms raised (spec, SPC)', lat.n, `${lat.transitions} transitions`, ''],
        ['reading → alarm raised, p50', `${fmt((lat.p50 ?? 0) * 1000)} ms`, '', ''],
        [
          'reading → alarm raised, p99',
          `${fmt((lat.p99 ?? 0) * 1000)} ms`,
          'target ≤ 2,000 ms',
          (lat.p99 ?? 99) <= 2 ? 'PASS' : 'MISS',
        ],
        ['reading → alarm raised, max', `${fmt((lat.max ?? 0) * 1000)} ms`, '', ''],
        ['evaluator behind the ETL at the end', `${behind} readings`, '', ''],
      ],
    ),
  ].join('\n')
  publish(`bench:alarms, ${fmt(RATE)} readings/s`, body, { noRecord: args['no-record'] })
}

await runBench(async () => {
  ensureDist()
  await main()
})
