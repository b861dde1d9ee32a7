import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { loadConfig } from '../../src/config/index.ts'
import { createPool } from '../../src/db/index.ts'
import { kafkaSecrets } from '../../src/kafka/index.ts'
import { freePort, startEmbeddedKafka, startEmbeddedPostgres } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { startServices } from '../../src/stack/index.ts'
import { cli, collect, count, envOf, log, sleep } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

/**
 * These tests restart a service under the ETL, so they run on a Kafka broker and a PostgreSQL of
 * their own rather than the shared test services.
 */
describe('the ETL when a service restarts mid-run', () => {
  it('waits for Kafka and for PostgreSQL, says so, and ends with exact counts', async (t) => {
    const dataDir = join(repoRoot, '.test-stack', 'restarts')
    await rm(dataDir, { recursive: true, force: true })
    const [kafkaPort, controllerPort, dbPort] = [await freePort(), await freePort(), await freePort()]
    const base = loadConfig(
      { dataDir, kafkaPort, kafkaControllerPort: controllerPort, databasePort: dbPort, kafkaHeapMb: 512 },
      {},
    )
    let services = await startServices(base, log)
    for (const password of Object.values(kafkaSecrets(dataDir))) rememberSecret(password)
    let stopKafka = services.stop
    t.after(() => stopKafka())
    const config = { ...base, ...services.kafka.admin, databaseUrl: services.databaseUrl }
    const pool = createPool(config.databaseUrl, { max: 2 })
    t.after(() => pool.end())

    for (const [service, n] of [
      ['kafka', 200_000],
      ['postgres', 100_000],
    ] as const) {
      await runSimulator({ ...config, simCount: n, simSeed: n }, log)
      const before = await count(pool, 'SELECT count(*) AS n FROM sensor_data')
      const child = cli(['etl', 'run'], {
        ...envOf(config),
        EVF_ETL_BATCH_SIZE: '500',
        EVF_LOG_LEVEL: 'info',
      })
      const done = collect(child)
      // Restart the service once the run is loading.
      const deadline = Date.now() + 30_000
      while ((await count(pool, 'SELECT count(*) AS n FROM sensor_data').catch(() => 0)) <= before + 1000) {
        assert.ok(Date.now() < deadline, 'the run started loading')
        await sleep(50)
      }
      if (service === 'kafka') {
        const pid = Number(readFileSync(join(dataDir, 'kafka', 'broker.pid'), 'utf8'))
        process.kill(pid, 'SIGKILL')
        // 8 s down: the Kafka client (2.x) rides it out with its own retries, which the worker says
        // (`waiting for Kafka: the client retries`); its own retry loop may not be needed.
        await sleep(8000)
        const broker = await startEmbeddedKafka({
          dataDir,
          port: kafkaPort,
          controllerPort,
          heapMb: 512,
          partitions: 3,
          log,
        })
        stopKafka = async () => {
          await broker.stop()
          await services.stop()
        }
      } else {
        const pid = Number(readFileSync(join(dataDir, 'postgres', 'postmaster.pid'), 'utf8').split('\n')[0])
        process.kill(pid, 'SIGKILL')
        await sleep(3000)
        const db = await startEmbeddedPostgres({ dataDir, port: dbPort, log })
        const previous = stopKafka
        stopKafka = async () => {
          await previous()
          await db.stop()
        }
        services = { ...services, databaseUrl: db.url }
      }
      const result = await done
      assert.equal(result.code, 0, result.stderr.slice(-2000))
      assert.match(result.stderr, service === 'kafka' ? /waiting for Kafka/ : /waiting for PostgreSQL/)
      const summary = JSON.parse(result.stdout)
      if (service === 'postgres') assert.ok(summary.retries >= 1, 'the run retried')
      assert.equal(
        await count(pool, 'SELECT count(*) AS n FROM sensor_data'),
        before + n,
        `${service}: exact rows`,
      )
      assert.equal(
        await count(
          pool,
          'SELECT count(DISTINCT (source_topic, source_partition, source_offset)) AS n FROM sensor_data',
        ),
        before + n,
      )
    }
  })
})
