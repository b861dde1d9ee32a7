import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { configToEnv, flagFor, loadConfig, settings } from '../../src/config/index.ts'
import { PipelineError } from '../../src/errors/index.ts'

describe('loadConfig', () => {
  it('has a default for every setting', () => {
    const c = loadConfig({}, {})
    assert.equal(c.apiPort, 8000)
    assert.equal(c.kafkaPort, 9092)
    assert.equal(c.topicPrefix, 'sensor.')
    assert.equal(c.topicPartitions, 3)
    assert.equal(c.etlSchedule, '*/5 * * * *')
    assert.equal(c.simIntervalMs, 5000)
    assert.deepEqual(c.simStations, [], 'every station of the catalog')
    assert.match(c.catalog, /catalog\/plant\.yaml$/)
  })

  it('reads the environment, and a flag wins over it', () => {
    assert.equal(loadConfig({}, { EVF_API_PORT: '9000' }).apiPort, 9000)
    assert.equal(loadConfig({ apiPort: '9100' }, { EVF_API_PORT: '9000' }).apiPort, 9100)
    assert.equal(loadConfig({}, { EVF_SIMULATOR: 'false' }).simulator, false)
  })

  it('stops on a bad value, naming the key, its source and what is allowed', () => {
    const attempt = (env: Record<string, string>) => {
      try {
        loadConfig({}, env)
      } catch (error) {
        assert.ok(error instanceof PipelineError)
        assert.equal(error.code, 'CONFIG_INVALID')
        return error.message
      }
      assert.fail('expected a config error')
    }
    const mode = attempt({ EVF_ETL_MODE: 'sometimes' })
    assert.match(mode, /etlMode \(env EVF_ETL_MODE\)/)
    assert.match(mode, /continuous, schedule, off/)
    assert.match(attempt({ EVF_ETL_BATCH_SIZE: '0' }), /etlBatchSize .*must be ≥ 1/)
    assert.match(attempt({ EVF_ETL_SCHEDULE: 'every day' }), /etlSchedule .*cron/)
    assert.match(attempt({ EVF_KAFKA_PORT: '70000' }), /kafkaPort .*≤ 65535/)
    assert.match(attempt({ EVF_SIM_CATALOG_FROM: 'kafka' }), /simCatalogFrom .*file, database/)
  })

  it('stops the simulator on a station its catalog does not have, naming the allowed ones', async () => {
    const { runSimulator } = await import('../../src/simulator/index.ts')
    const { createLogger } = await import('../../src/shared/log.ts')
    const config = loadConfig({}, { EVF_SIM_STATIONS: 'paint,welding', KAFKA_BROKERS: '127.0.0.1:1' })
    await assert.rejects(runSimulator(config, createLogger('test', 'silent')), (error: Error) => {
      assert.ok(error instanceof PipelineError && error.code === 'CONFIG_INVALID')
      assert.match(error.message, /simStations .*welding.*allowed: chassis, battery, paint, quality/)
      return true
    })
  })

  it('round-trips through the environment handed to child processes', () => {
    const c = loadConfig({ simStations: 'paint,quality', simulator: 'false' }, {})
    assert.deepEqual(loadConfig({}, configToEnv(c)), c)
  })

  it('derives a flag from every key', () => {
    assert.equal(flagFor('kafkaBrokers'), '--kafka-brokers')
    assert.equal(Object.keys(settings).length, new Set(Object.values(settings).map((s) => s.env)).size)
  })
})

describe('classify', () => {
  it('tells Kafka from PostgreSQL failures, by code rather than by message', async () => {
    const { classify } = await import('../../src/errors/index.ts')
    const withCode = (message: string, code: string) => Object.assign(new Error(message), { code })
    assert.equal(
      classify(withCode('joinGroup failed 11 times.', 'PLT_KFK_MULTIPLE')).code,
      'KAFKA_UNREACHABLE',
    )
    assert.equal(
      classify(withCode('connect ECONNREFUSED 127.0.0.1:5432', 'ECONNREFUSED')).code,
      'DATABASE_UNREACHABLE',
    )
    assert.equal(
      classify(withCode('terminating connection due to administrator command', '57P01')).code,
      'DATABASE_UNREACHABLE',
    )
    assert.equal(
      classify(new Error('Client has encountered a connection error and is not queryable')).code,
      'DATABASE_UNREACHABLE',
    )
    assert.equal(classify(new Error('Connection terminated unexpectedly')).code, 'DATABASE_UNREACHABLE')
    assert.equal(classify(new TypeError('x is undefined')).code, 'UNEXPECTED')
    assert.equal(classify(new Error('x')).canRetry, false)
  })
})
