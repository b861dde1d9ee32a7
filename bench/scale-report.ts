/** bench:scale's tables: costs per component, each against the baseline of the same run. */
import { fmt, publish, table, times } from './harness/index.ts'
import { API_PATH, type ApiRun, LOAD } from './scale-api.ts'
import { type Etl, N, PARTITIONS, type Produce, per1000, SENSORS_PER_STATION } from './scale-kafka.ts'

const s3 = (x: number): string => x.toFixed(3)

export function report(r: {
  produced1: Produce
  etl1: Etl[]
  api: ApiRun[]
  produced3: Produce | undefined
  etl3: Etl | undefined
  clusterFailure: string | undefined
  buildNote: string
}): void {
  const { produced1: p1, produced3: p3, etl3: e3 } = r
  const e1 = r.etl1[0]!
  const dash = '—'
  const row = (what: string, a: number, b: number | undefined, show: (x: number) => string) => [
    what,
    show(a),
    b === undefined ? dash : show(b),
    b === undefined ? dash : times(b, a),
  ]
  const brokerTotal = (p: Produce, e: Etl) => per1000(p.brokerCpu, N) + per1000(e.brokerCpu, e.windowRows)

  const kafkaTable = table(
    ['', 'Kafka 1 node (baseline)', 'Kafka 3 nodes, RF 3', '3 nodes ÷ 1 node'],
    [
      row('produce: readings/s (simulator, acks=all, idempotent)', p1.rate, p3?.rate, fmt),
      row(
        'produce: simulator CPU s per 1,000 readings',
        per1000(p1.simCpu, N),
        p3 && per1000(p3.simCpu, N),
        s3,
      ),
      row(
        'produce: brokers’ CPU s per 1,000 readings (all nodes)',
        per1000(p1.brokerCpu, N),
        p3 && per1000(p3.brokerCpu, N),
        s3,
      ),
      row('ETL, 1 worker: rows/s', e1.rate, e3?.rate, fmt),
      row(
        'ETL: ETL processes’ CPU s per 1,000 readings',
        per1000(e1.etlCpu, e1.windowRows),
        e3 && per1000(e3.etlCpu, e3.windowRows),
        s3,
      ),
      row(
        'ETL: PostgreSQL CPU s per 1,000 readings',
        per1000(e1.pgCpu, e1.windowRows),
        e3 && per1000(e3.pgCpu, e3.windowRows),
        s3,
      ),
      row(
        'ETL: brokers’ CPU s per 1,000 readings (all nodes)',
        per1000(e1.brokerCpu, e1.windowRows),
        e3 && per1000(e3.brokerCpu, e3.windowRows),
        s3,
      ),
      row(
        'brokers, produce + ETL: CPU s per 1,000 readings',
        brokerTotal(p1, e1),
        p3 && e3 && brokerTotal(p3, e3),
        s3,
      ),
    ],
  )

  const workersTable = table(
    [
      'etl follow (Kafka 1 node)',
      'rows/s',
      '÷ 1 worker',
      'ETL CPU s / 1,000',
      'PostgreSQL CPU s / 1,000',
      'brokers CPU s / 1,000',
      'cores used: ETL + PostgreSQL + brokers',
    ],
    r.etl1.map((e) => [
      `--etl-workers ${e.workers}`,
      fmt(e.rate),
      times(e.rate, e1.rate),
      s3(per1000(e.etlCpu, e.windowRows)),
      s3(per1000(e.pgCpu, e.windowRows)),
      s3(per1000(e.brokerCpu, e.windowRows)),
      `${(e.etlCpu / e.windowSeconds).toFixed(2)} + ${(e.pgCpu / e.windowSeconds).toFixed(2)} + ${(e.brokerCpu / e.windowSeconds).toFixed(2)}`,
    ]),
  )

  const a0 = r.api[0]!
  const reqs = (a: ApiRun) => a.m.result!.requests.average
  const perApiCore = (a: ApiRun) => reqs(a) / a.m.cpu.server
  const perPgCore = (a: ApiRun) => reqs(a) / (a.primaryCores + a.standbyCores)
  const apiTable = table(
    [
      `\`${API_PATH}\`, cache off`,
      'req/s',
      '÷ primary',
      'p99 ms',
      'API CPU (cores)',
      'primary CPU',
      'standby CPU',
      'req per API CPU-s',
      'req per PostgreSQL CPU-s',
    ],
    r.api.map((a) => [
      `API reads from the ${a.readsFrom}`,
      fmt(reqs(a)),
      times(reqs(a), reqs(a0)),
      String(a.m.result!.latency.p99),
      a.m.cpu.server.toFixed(2),
      a.primaryCores.toFixed(2),
      a.standbyCores.toFixed(2),
      fmt(perApiCore(a)),
      fmt(perPgCore(a)),
    ]),
  )

  // The capacity plan's inputs: the baseline's cost per component and its rate per core.
  const cost = (what: string, c: number) => [what, s3(c), fmt(1000 / c)]
  const costsTable = table(
    ['component (Kafka 1 node, 1 ETL worker)', 'CPU s per 1,000 readings', 'readings/s per core'],
    [
      cost('simulator (producer)', per1000(p1.simCpu, N)),
      cost('Kafka broker, 1 node (produce + ETL fetch)', brokerTotal(p1, e1)),
      ...(p3 && e3 ? [cost('Kafka brokers, 3 nodes RF 3, all three together', brokerTotal(p3, e3))] : []),
      cost('ETL worker (`etl follow`, supervisor included)', per1000(e1.etlCpu, e1.windowRows)),
      cost('PostgreSQL (the ETL’s load)', per1000(e1.pgCpu, e1.windowRows)),
    ],
  )
  const apiCost = `API: ${fmt(perApiCore(a0))} req/s per API core (primary), ${fmt(perApiCore(r.api[1] ?? a0))} (standby); ${fmt(perPgCore(a0))} req per PostgreSQL CPU-second.`

  const notes = [
    `${fmt(N)} readings (${SENSORS_PER_STATION} sensors per station, 4 station topics × ${PARTITIONS} partitions), produced by \`node dist/cli.js simulate\` and loaded by \`node dist/cli.js etl follow\`, both as Kafka's admin user.`,
    'CPU from /proc: the simulator over its whole life (start-up included); the ETL (follow and its workers), PostgreSQL (the postmaster and its backends) and the brokers (every JVM) from the first commit seen to the last reading loaded (the readings of that window); ETL rows/s from the first commit to the last (`created_at`).',
    `ETL CPU over the processes' whole lives, start-up and stop included: ${r.etl1.map((e) => `${e.workers} worker${e.workers > 1 ? 's' : ''} ${e.etlCpuTotal.toFixed(1)} s`).join(', ')}${e3 ? `, 3 nodes ${e3.etlCpuTotal.toFixed(1)} s` : ''}.`,
    `Cores used by everything else on the machine (this process, the kernel, anyone else) in each measured window: ${[
      `produce 1 node ${p1.other.toFixed(2)}`,
      ...r.etl1.map((e) => `ETL ${e.workers} worker${e.workers > 1 ? 's' : ''} ${e.other.toFixed(2)}`),
      ...r.api.map((a) => `API on the ${a.readsFrom} ${a.others.toFixed(2)}`),
      ...(p3 ? [`produce 3 nodes ${p3.other.toFixed(2)}`] : []),
      ...(e3 ? [`ETL 3 nodes ${e3.other.toFixed(2)}`] : []),
    ].join(', ')}.`,
    `API: autocannon ${LOAD.connections} connections × ${LOAD.duration} s after a ${LOAD.warmup} s warm-up, in this process; EVF_API_CACHE_MS=0, a bearer token on every request; the standby by streaming replication from the same embedded primary.`,
    ...(r.clusterFailure ? [`Kafka 3 nodes: FAILED — ${r.clusterFailure.split('\n')[0]}`] : []),
    'One shared 2-core machine: every process competes for the same cores, so these are costs, not a cluster’s speed.',
  ]
  const body = [
    '**Produce and ETL: 1 Kafka node against 3 nodes with RF 3**',
    kafkaTable,
    '**ETL workers** (the same backlog on 1 node; tables truncated between runs)',
    workersTable,
    '**API reads: primary against hot standby**',
    apiTable,
    '**Costs** (the baseline: what docs/scaling.md plans with)',
    costsTable,
    apiCost,
    notes.map((n) => `- ${n}`).join('\n'),
  ].join('\n\n')
  const note = r.buildNote ? `\n\n(${r.buildNote.replace(/^; /, '')})` : ''
  publish('Scaling (bench:scale)', `${body}${note}`, { leading: '\n' })
}
