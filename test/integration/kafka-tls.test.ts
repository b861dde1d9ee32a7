/**
 * The embedded broker over TLS (issue 13): with a PKCS12 keystore its client listener is
 * SASL_SSL, every client must trust the CA and still log in with SCRAM, and `stack up` hands its
 * components the CA, for one node and for a 3-node cluster.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn, spawnSync } from 'node:child_process'
import { randomBytes, randomUUID, X509Certificate } from 'node:crypto'
import { existsSync, readFileSync, statSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { describe, it, type TestContext } from 'node:test'
import { Kafka, logLevel } from 'kafkajs'
import { kafkaCodes } from '../../src/errors/index.ts'
import {
  brokerList,
  createAdmin,
  type KafkaSettings,
  readKafkaSecrets,
  scramLogin,
} from '../../src/kafka/index.ts'
import { brokerTls, exportedCaFile, freePort, startEmbeddedKafka } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { childPids } from '../../src/shared/process.ts'
import { cli, collect, log, waitFor } from '../helpers.ts'
import { consumeFirst, createTopicAs, failure as failAs, produceAs } from '../kafka-as.ts'
import { rememberSecret } from '../secrets.ts'

const root = join(repoRoot, '.test-stack', 'kafka-tls')
const password = randomBytes(18).toString('base64url')
rememberSecret(password)
const keystore = join(root, 'tls', 'kafka.p12')
const caOfKeystore = join(root, 'tls', 'kafka-ca.pem')
/** A second keystore, made by its own CA: what a client trusting the wrong CA trusts. */
const otherKeystore = join(root, 'tls', 'other.p12')
const otherCa = join(root, 'tls', 'other-ca.pem')

/** `evf tls kafka-keystore`, the keystore's password in its environment (never on its command line). */
async function makeKeystore(
  file: string,
  env: Record<string, string> = { EVF_KAFKA_KEYSTORE_PASSWORD: password },
) {
  const run = await collect(cli(['tls', 'kafka-keystore', '--keystore', file], env))
  assert.equal(run.code, 0, run.stderr)
  return run
}

const failure = (work: () => Promise<unknown>) => failAs(work, 'the connection to be refused')

/** Every message in an error and its causes, for matching what TLS said. */
function messages(error: unknown, depth = 0): string {
  if (!error || typeof error !== 'object' || depth > 8) return ''
  const e = error as { message?: unknown; errors?: unknown; cause?: unknown; code?: unknown }
  const inner = [...(Array.isArray(e.errors) ? e.errors : []), e.cause].map((c) => messages(c, depth + 1))
  return [String(e.message ?? ''), String(e.code ?? ''), ...inner].join(' | ')
}

/** How listing the topics as `login` fails. */
async function refusal(login: KafkaSettings): Promise<unknown> {
  const client = createAdmin(login, 'evf-test-tls-refused')
  try {
    return await failure(() => client.listTopics())
  } finally {
    await client.close().catch(() => undefined)
  }
}

/** A message written and read back as `login`, on a topic it creates. */
async function roundTrip(login: KafkaSettings, topic: string): Promise<string> {
  await createTopicAs(login, topic)
  await produceAs(login, topic, 'over TLS')
  return consumeFirst(login, topic, `evf-test-tls-${randomUUID()}`)
}

/** What `openssl s_client` says of the broker's certificate chain when it trusts `caFile` alone. */
function opensslVerify(port: number, caFile: string): string {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-CAfile', caFile, '-verify_ip', '127.0.0.1']
  // An empty stdin: it ends the session once the handshake is done.
  const run = spawnSync('openssl', args, { input: '', encoding: 'utf8', timeout: 15_000 })
  return /Verify return code: (\d+ \([^)]*\))/.exec(run.stdout)?.[1] ?? run.stderr
}

describe('Kafka over TLS (SASL_SSL)', { concurrency: false }, () => {
  it('`evf tls kafka-keystore` writes a PKCS12 keystore (0600) signed by a CA of its own, without printing a given password', async () => {
    await rm(root, { recursive: true, force: true })
    const run = await makeKeystore(keystore)
    assert.equal(run.stdout, `EVF_KAFKA_KEYSTORE=${keystore}\n`)
    assert.ok(!run.stdout.includes(password) && !run.stderr.includes(password))
    assert.equal(statSync(keystore).mode & 0o777, 0o600)
    assert.match(readFileSync(caOfKeystore, 'utf8'), /^-----BEGIN CERTIFICATE-----/)
    // Without a password in the environment one is generated and printed once, for the person.
    const generated = await makeKeystore(otherKeystore, {})
    const printed = /^EVF_KAFKA_KEYSTORE_PASSWORD=(\S+)$/m.exec(generated.stdout)?.[1]
    assert.ok(printed && printed.length >= 24, generated.stdout.replace(printed ?? '', '***'))
    rememberSecret(printed)
    assert.match(generated.stderr, /shown once/)
    // `evf config` masks it.
    const config = await collect(cli(['config'], { EVF_KAFKA_KEYSTORE_PASSWORD: printed }))
    assert.equal(JSON.parse(config.stdout).kafkaKeystorePassword, '***')
  })

  it('`stack up` refuses a keystore it cannot use, naming the setting, before starting anything', async () => {
    const dataDir = join(root, 'refused')
    const up = async (env: Record<string, string>) => {
      const run = await collect(cli(['stack', 'up', '--data-dir', dataDir], env))
      assert.equal(run.code, 2, run.stderr)
      assert.ok(!run.stderr.includes(password) && !run.stdout.includes(password))
      return run.stderr
    }
    const wrong = `wrong-${randomBytes(12).toString('base64url')}`
    rememberSecret(wrong)
    const cases: [Record<string, string>, RegExp][] = [
      [
        { EVF_KAFKA_KEYSTORE: keystore, EVF_KAFKA_KEYSTORE_PASSWORD: wrong },
        /CONFIG_INVALID: kafkaKeystorePassword \(EVF_KAFKA_KEYSTORE_PASSWORD\) does not open kafkaKeystore/,
      ],
      [
        { EVF_KAFKA_KEYSTORE: join(root, 'missing.p12'), EVF_KAFKA_KEYSTORE_PASSWORD: password },
        /CONFIG_INVALID: kafkaKeystore \(EVF_KAFKA_KEYSTORE\) = \S+missing\.p12 cannot be read \(ENOENT\)/,
      ],
      [
        { EVF_KAFKA_KEYSTORE: caOfKeystore, EVF_KAFKA_KEYSTORE_PASSWORD: password },
        /CONFIG_INVALID: kafkaKeystore \(EVF_KAFKA_KEYSTORE\) = \S+ is not a PKCS12 keystore/,
      ],
      [
        { EVF_KAFKA_KEYSTORE: keystore },
        /CONFIG_INVALID: kafkaKeystore \(EVF_KAFKA_KEYSTORE\) is set but kafkaKeystorePassword \(EVF_KAFKA_KEYSTORE_PASSWORD\) is empty/,
      ],
      [
        { EVF_KAFKA_KEYSTORE: keystore, EVF_KAFKA_KEYSTORE_PASSWORD: password, KAFKA_CA_FILE: otherCa },
        /CONFIG_INVALID: kafkaCaFile \(KAFKA_CA_FILE\) = \S+ did not issue the certificate of kafkaKeystore/,
      ],
    ]
    for (const [env, said] of cases) assert.match(await up(env), said)
    assert.ok(
      !existsSync(join(dataDir, 'postgres')) && !existsSync(join(dataDir, 'kafka')),
      'nothing started',
    )
  })

  it('one broker: a client that trusts the CA logs in with SCRAM and produces and consumes; one without TLS, or trusting another CA, is refused', async (t) => {
    const dataDir = join(root, 'one')
    const [port, controllerPort] = [await freePort(), await freePort()]
    const tls = await brokerTls({
      dataDir,
      kafkaBrokers: '',
      kafkaCaFile: '',
      kafkaKeystore: keystore,
      kafkaKeystorePassword: password,
    })
    assert.ok(tls)
    assert.equal(tls.caFile, exportedCaFile(dataDir))
    const fingerprint = (f: string) => new X509Certificate(readFileSync(f)).fingerprint256
    assert.equal(fingerprint(tls.caFile), fingerprint(caOfKeystore), 'the root of the chain')
    const broker = await startEmbeddedKafka({
      dataDir,
      port,
      controllerPort,
      heapMb: 384,
      partitions: 1,
      log,
      tls,
    })
    t.after(() => broker.stop())
    for (const s of Object.values(broker.secrets)) rememberSecret(s)
    const props = readFileSync(join(dataDir, 'kafka', 'server.properties'), 'utf8')
    assert.match(props, /^listeners=SASL_SSL:\/\/127\.0\.0\.1:\d+,CONTROLLER:/m)
    assert.match(props, /^listener\.security\.protocol\.map=CONTROLLER:SASL_PLAINTEXT,SASL_SSL:SASL_SSL$/m)

    const admin = scramLogin(broker.brokers, 'admin', broker.secrets.admin, tls.caFile)
    assert.equal(await roundTrip(admin, `tls-${randomUUID().slice(0, 8)}`), 'over TLS')

    const plain = await refusal({ ...admin, kafkaCaFile: '' })
    assert.ok(kafkaCodes(plain).has('PLT_KFK_NETWORK'), messages(plain))
    assert.match(messages(await refusal({ ...admin, kafkaCaFile: otherCa })), /certificate/i)

    // Independent clients agree: OpenSSL verifies the chain and the address with the CA alone,
    // and not with another; kafkajs logs in over TLS and produces and reads.
    assert.equal(opensslVerify(port, tls.caFile), '0 (ok)')
    assert.notEqual(opensslVerify(port, otherCa), '0 (ok)')
    await kafkajsRoundTrip(t, broker.brokers, broker.secrets.admin, tls.caFile)
  })

  it('`stack up --kafka-nodes 3` with a keystore: readings flow simulator → Kafka (TLS) → ETL → PostgreSQL → API; the components get the CA and not the keystore’s password', async (t) => {
    const dataDir = join(root, 'stack')
    const stack = await stackUp(t, dataDir)
    const banner = stack.output()
    assert.match(banner, new RegExp(`SASL_SSL/SCRAM, CA ${exportedCaFile(dataDir)}`))
    for (const s of Object.values(readKafkaSecrets(dataDir) ?? {})) rememberSecret(s)
    for (const i of [1, 2, 3]) {
      const props = readFileSync(join(dataDir, 'kafka', `node-${i}`, 'server.properties'), 'utf8')
      assert.match(props, /^inter\.broker\.listener\.name=SASL_SSL$/m)
      assert.match(props, /^ssl\.truststore\.type=PEM$/m)
    }
    const url = `http://127.0.0.1:${stack.apiPort}/sensor-data?limit=200`
    await waitFor(
      'fresh readings of every station through the API',
      async () => {
        const res = await fetch(url).catch(() => undefined)
        if (!res?.ok) return false
        const rows = (await res.json()) as { station: string; data: { timestamp: number } }[]
        const newest = Math.max(...rows.map((r) => r.data.timestamp))
        return new Set(rows.map((r) => r.station)).size === 4 && Date.now() / 1000 - newest < 30
      },
      60_000,
    )
    assertChildrenEnv(stack.child, dataDir)
    // A command next to the stack finds its brokers, its login and its CA in the data directory.
    const simulate = await collect(cli(['simulate', '--sim-count', '20'], { EVF_DATA_DIR: dataDir }))
    assert.equal(simulate.code, 0, simulate.stderr)
    await stack.stop()
    assert.match(stack.output(), /stack stopped/)
  })
})

async function kafkajsRoundTrip(t: TestContext, brokers: string, admin: string, caFile: string) {
  const kafka = new Kafka({
    clientId: 'evf-test-kafkajs-tls',
    brokers: brokerList(brokers),
    ssl: { ca: [readFileSync(caFile, 'utf8')] },
    sasl: { mechanism: 'scram-sha-512', username: 'admin', password: admin },
    logLevel: logLevel.NOTHING,
  })
  const topic = `tls-kafkajs-${randomUUID().slice(0, 8)}`
  const client = kafka.admin()
  await client.connect()
  t.after(() => client.disconnect())
  await client.createTopics({ topics: [{ topic, numPartitions: 1 }] })
  const producer = kafka.producer()
  await producer.connect()
  await producer.send({ topic, messages: [{ value: 'kafkajs over TLS' }] })
  await producer.disconnect()
  const offsets = await client.fetchTopicOffsets(topic)
  assert.equal(offsets[0]?.high, '1')
}

/** The components `stack up` started: their environment has the CA, and no keystore password. */
function assertChildrenEnv(stack: ChildProcess, dataDir: string): void {
  const components = childPids(stack.pid ?? 0).filter((pid) =>
    readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('cli.js'),
  )
  assert.ok(components.length >= 3, `the ETL, the API and the simulator run (${components.length})`)
  for (const pid of components) {
    const environ = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0')
    assert.ok(!environ.some((v) => v.includes(password)), 'no component has the keystore password')
    assert.ok(environ.includes(`KAFKA_CA_FILE=${exportedCaFile(dataDir)}`), 'each component has the CA')
    assert.ok(environ.includes('EVF_KAFKA_KEYSTORE='), 'nor the keystore')
  }
}

/** `evf stack up` with the keystore and a 3-node cluster, in a process group of its own, up. */
async function stackUp(t: TestContext, dataDir: string) {
  await rm(dataDir, { recursive: true, force: true })
  // Node i listens on base + 2(i-1): an even base away from the other tests' ports, below the
  // kernel's ephemeral range, where any client's socket may hold a port.
  const base = 14_000 + 2 * Math.floor(Math.random() * 1000)
  const apiPort = await freePort()
  const flags = {
    '--data-dir': dataDir,
    '--kafka-nodes': '3',
    '--kafka-port': String(base),
    '--kafka-controller-port': String(base + 2_000),
    '--kafka-heap-mb': '384',
    '--api-port': String(apiPort),
    '--api-auth': 'off',
    '--sim-interval-ms': '200',
    '--sim-sensors-per-station': '1',
  }
  const child = spawn(
    process.execPath,
    [join(repoRoot, 'dist', 'cli.js'), 'stack', 'up', ...Object.entries(flags).flat()],
    {
      cwd: repoRoot,
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        EVF_KAFKA_KEYSTORE: keystore,
        EVF_KAFKA_KEYSTORE_PASSWORD: password,
        EVF_LOG_LEVEL: 'info',
      },
    },
  )
  let out = ''
  child.stdout?.on('data', (d) => (out += d))
  child.stderr?.on('data', (d) => (out += d))
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)))
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (child.pid) process.kill(-child.pid, sig)
    } catch {
      // already gone
    }
  }
  // Stopped as Ctrl-C would even when the test fails: the brokers and PostgreSQL, in process
  // groups of their own, are stopped by the stack, not left running.
  const stopped = async () => {
    signal('SIGINT')
    const timer = setTimeout(() => signal('SIGKILL'), 90_000)
    const code = await exited
    clearTimeout(timer)
    return code
  }
  t.after(() => stopped())
  await waitFor(
    'the stack banner',
    async () => out.includes('pipeline is up') || child.exitCode !== null,
    180_000,
  )
  assert.ok(out.includes('pipeline is up'), `stack up failed:\n${out.slice(-4000)}`)
  const stop = async () => assert.equal(await stopped(), 0, out.slice(-4000))
  return { child, apiPort, output: () => out, stop }
}
