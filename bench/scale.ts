/**
 * `npm run bench:scale`: what each piece of the pipeline costs, measured side by side in one run
 * on this machine (issue 14, part 4), for the capacity plan in docs/scaling.md.
 *
 *  A. Kafka, 1 node: `node dist/cli.js simulate` produces BENCH_SCALE_MESSAGES readings
 *     (default 200,000), then `node dist/cli.js etl follow` loads them with 1, 2 and 4 workers
 *     (the tables truncated between runs, so each starts again from the first offset).
 *  B. The API (`node dist/cli.js api`, its cache off) reading from the primary, then from a hot
 *     standby of it (DATABASE_READ_URL), driven by autocannon.
 *  C. Kafka, 3 nodes with replication factor 3 and min.insync.replicas=2: the same produce and
 *     the same 1-worker load. Should the cluster fail, A and B are still reported.
 *
 * Every figure is a cost: CPU seconds per 1,000 readings of each component (from /proc), or
 * requests per CPU-second of the API, each with its ratio against the baseline of the same run.
 * The machine has few cores shared by everything, so the rates are not a cluster's speed.
 * Prints the tables and appends them to docs/benchmarks-history.md ("Scaling (bench:scale)").
 * Everything it starts runs under .cache/bench-scale and is stopped on exit, error or Ctrl-C.
 * A short trial: BENCH_SCALE_MESSAGES=20000 BENCH_SCALE_API_SECONDS=2.
 * Parts: scale-kafka.ts (A, C), scale-api.ts (B), scale-report.ts (the tables).
 */
import { join } from 'node:path'
import type { Config } from '../src/config/index.ts'
import { createPool, migrate } from '../src/db/index.ts'
import { ensureDist, progress, runBench, startKafka, startPostgres } from './harness/index.ts'
import { apiRuns } from './scale-api.ts'
import {
  base,
  dataDir,
  type Etl,
  PARTITIONS,
  type Produce,
  produce,
  runEtl,
  startThreeNodes,
} from './scale-kafka.ts'
import { report } from './scale-report.ts'

const WORKERS = [1, 2, 4]

async function main(): Promise<void> {
  const buildNote = ensureDist(false)
  progress('PostgreSQL: starting and migrating…')
  const db = await startPostgres(dataDir)
  const postmaster = db.postmaster
  {
    const pool = createPool(db.url, { max: 1 })
    try {
      await migrate(pool)
    } finally {
      await pool.end()
    }
  }
  const config: Config = { ...base, databaseUrl: db.url }

  // A. One node: produce, then the ETL with 1, 2 and 4 workers on the same backlog.
  const one = await startKafka(join(dataDir, 'kafka-1'), {
    heapMb: base.kafkaHeapMb,
    partitions: PARTITIONS,
    topicPrefix: base.topicPrefix,
  })
  const produced1 = await produce(config, one)
  const etl1: Etl[] = []
  for (const workers of WORKERS) etl1.push(await runEtl(config, one, workers, postmaster))
  await one.stop()

  // B. The API, on the rows the last load left, from the primary and from a standby.
  const api = await apiRuns(db.url, postmaster)

  // C. Three nodes, RF 3: the same produce and the same 1-worker load.
  let produced3: Produce | undefined
  let etl3: Etl | undefined
  let clusterFailure: string | undefined
  try {
    const three = await startThreeNodes()
    try {
      produced3 = await produce(config, three)
      etl3 = await runEtl(config, three, 1, postmaster)
    } finally {
      await three.stop()
    }
  } catch (error) {
    clusterFailure = error instanceof Error ? error.message : String(error)
    progress(`Kafka, 3 nodes: FAILED — ${clusterFailure}`)
  }

  report({ produced1, etl1, api, produced3, etl3, clusterFailure, buildNote })
}

await runBench(main)
