import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import { ensureDatabase } from '../../src/db/index.ts'
import { airflowBin, airflowEnv, DAG_ID, migrateMetadata } from '../../src/orchestrator/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { count, isolatedConfig, log, produceRaw } from '../helpers.ts'
import { topicFor } from '../plant.ts'

const python = join(repoRoot, '.cache', 'airflow', 'venv', 'bin', 'python')

function exec(
  cmd: string,
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, {
      cwd: repoRoot,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d) => (out += d))
    child.stderr.on('data', (d) => (out += d))
    child.on('exit', (code) => resolve({ code, out }))
  })
}

describe('orchestration by Apache Airflow 3', () => {
  it('parses the DAG with no import errors: schedule, tasks, order, retries', async () => {
    const script = `
import json
from airflow.dag_processing.dagbag import DagBag
bag = DagBag('${join(repoRoot, 'airflow', 'dags')}')
dag = bag.dags['${DAG_ID}']
print(json.dumps({
  'errors': {k: str(v) for k, v in bag.import_errors.items()},
  'schedule': {'expression': dag.timetable.expression},
  'catchup': dag.catchup,
  'max_active_runs': dag.max_active_runs,
  'tasks': {t.task_id: {'downstream': sorted(t.downstream_task_ids), 'retries': t.retries,
                        'retry_delay': t.retry_delay.total_seconds()} for t in dag.tasks},
}))`
    const r = await exec(python, ['-c', script], {
      AIRFLOW_HOME: join(repoRoot, '.test-stack', 'airflow-parse'),
    })
    assert.equal(r.code, 0, r.out)
    const dag = JSON.parse(r.out.trim().split('\n').pop()!)
    assert.deepEqual(dag.errors, {})
    assert.equal(dag.schedule.expression, '*/5 * * * *')
    assert.equal(dag.catchup, false)
    assert.equal(dag.max_active_runs, 1)
    assert.deepEqual(Object.keys(dag.tasks).sort(), [
      'check_services',
      'data_quality',
      'load',
      'refresh_summaries',
    ])
    assert.deepEqual(dag.tasks.check_services.downstream, ['load'])
    assert.deepEqual(dag.tasks.load.downstream, ['data_quality'])
    assert.deepEqual(dag.tasks.data_quality.downstream, ['refresh_summaries'])
    for (const t of Object.values(dag.tasks) as { retries: number; retry_delay: number }[]) {
      assert.equal(t.retries, 2)
      assert.ok(t.retry_delay > 0 && t.retry_delay <= 60)
    }
  })

  it('runs `airflow dags test` against the real Kafka and PostgreSQL: loads exactly, then nothing new, and fails on bad data quality', async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 2000, simSensorsPerStation: 2 })
    const id = randomUUID().slice(0, 8)
    const airflowDb = `airflow_test_${id}`
    const home = join(repoRoot, '.test-stack', `airflow-${id}`)
    t.after(async () => {
      await rm(home, { recursive: true, force: true })
      const c = new pg.Client({ connectionString: process.env.EVF_TEST_DATABASE_URL })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${airflowDb} WITH (FORCE)`)
      await c.end()
    })
    const env = airflowEnv({
      home,
      kafka: config,
      databaseUrl: config.databaseUrl,
      airflowDb,
      port: 8080,
      schedule: '*/5 * * * *',
      topicPrefix: config.topicPrefix,
    })
    await ensureDatabase(config.databaseUrl, airflowDb)
    await migrateMetadata(env)
    const meta = new pg.Client({
      connectionString: env.AIRFLOW__DATABASE__SQL_ALCHEMY_CONN!.replace('+psycopg2', ''),
    })
    meta.on('error', () => undefined) // the metadata database is dropped under it at cleanup
    await meta.connect()
    t.after(() => meta.end().catch(() => undefined))
    const lastRunStates = async () => {
      const { rows } = await meta.query<{ task_id: string; map_index: number; state: string }>(
        `SELECT task_id, map_index, state FROM task_instance
         WHERE run_id = (SELECT run_id FROM dag_run WHERE dag_id = $1 ORDER BY id DESC LIMIT 1) ORDER BY task_id, map_index`,
        [DAG_ID],
      )
      return rows
    }

    // Valid readings, and a few invalid ones (1 in 100, under the 5 % dead-letter threshold).
    await runSimulator(config, log)
    const paint = topicFor('paint', config.topicPrefix)
    await produceRaw(
      config,
      Array.from({ length: 20 }, (_, i) => ({ topic: paint, key: `bad-${i}`, value: '[1,2]' })),
    )

    const first = await exec(airflowBin, ['dags', 'test', DAG_ID], env)
    assert.equal(first.code, 0, first.out.slice(-4000))
    const states = await lastRunStates()
    assert.equal(states.length, 3 + 4, 'check_services, 4 mapped loads, data_quality, refresh_summaries')
    assert.ok(
      states.every((s) => s.state === 'success'),
      JSON.stringify(states),
    )
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM sensor_data'), 2000)
    assert.equal(await count(pool, 'SELECT count(*) AS n FROM dead_letters'), 20)

    const second = await exec(airflowBin, ['dags', 'test', DAG_ID], env)
    assert.equal(second.code, 0, second.out.slice(-4000))
    assert.ok((await lastRunStates()).every((s) => s.state === 'success'))
    assert.equal(
      await count(pool, 'SELECT count(*) AS n FROM sensor_data'),
      2000,
      'nothing new, nothing twice',
    )

    // 30 % dead letters on one topic breaks the data-quality rule: the run fails there.
    await produceRaw(config, [
      ...Array.from({ length: 30 }, (_, i) => ({ topic: paint, key: `worse-${i}`, value: 'not json' })),
      ...Array.from({ length: 70 }, (_, i) => ({
        topic: paint,
        key: `ok-${i}`,
        value: JSON.stringify({
          station: 'paint',
          timestamp: Date.now() / 1000,
          booth_temp: 22,
          booth_humidity: 60,
          paint_thickness: 1.1,
        }),
      })),
    ])
    const third = await exec(airflowBin, ['dags', 'test', DAG_ID], env)
    assert.notEqual(third.code, 0, 'the run fails')
    const failed = await lastRunStates()
    assert.equal(failed.find((s) => s.task_id === 'data_quality')?.state, 'failed', JSON.stringify(failed))
    assert.ok(
      failed.filter((s) => s.task_id === 'load').every((s) => s.state === 'success'),
      'the loads themselves succeeded',
    )
    assert.match(third.out, /dead-letter rate/)
  })
})
