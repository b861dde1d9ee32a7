import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { runCli } from '../helpers.ts'
import { allTopics, station, stationIds as stationNames } from '../plant.ts'

/** `evf <args>` with `env` on top of a clean environment. */
const evf = (args: string[], env: Record<string, string> = {}) => runCli(args, env, { cleanEnv: true })

describe('what evf tells other programs', () => {
  it('`evf catalog --json`: the catalog’s stations, their measurements and topics under the prefix', async () => {
    const catalog = JSON.parse(await evf(['catalog', '--json'], { EVF_TOPIC_PREFIX: 'plant7.' }))
    assert.equal(catalog.topicPrefix, 'plant7.')
    assert.deepEqual(catalog.topics, allTopics('plant7.'))
    assert.deepEqual(
      catalog.stations.map((s: { name: string }) => s.name),
      stationNames,
    )
    const paint = catalog.stations.find((s: { name: string }) => s.name === 'paint')
    assert.equal(paint.topic, 'plant7.paint')
    const fields = station('paint').measurements
    assert.deepEqual(
      Object.keys(paint.fields),
      fields.map((m) => m.name),
    )
    const boothTemp = fields.find((m) => m.name === 'booth_temp')!
    assert.equal(paint.fields.booth_temp.decimals, boothTemp.type === 'number' && boothTemp.decimals)
    assert.equal(paint.fields.booth_temp.simulation, undefined, 'the simulator’s model is left out')
  })

  it('`evf config` never prints a password', async () => {
    const out = await evf(['config'], {
      DATABASE_URL: 'postgresql://evf:s3cret@db.example:5432/evf?sslmode=require',
      KAFKA_BROKERS: 'kafka-1:9092',
      EVF_KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_USERNAME: 'etl',
      KAFKA_PASSWORD: 'k4fka-s3cret-password',
    })
    assert.doesNotMatch(out, /s3cret/)
    const config = JSON.parse(out)
    assert.equal(config.databaseUrl, 'postgresql://evf:***@db.example:5432/evf?sslmode=require')
    assert.equal(config.kafkaBrokers, 'kafka-1:9092')
    assert.equal(config.kafkaUsername, 'etl')
    assert.equal(config.kafkaPassword, '***')
  })
})
