import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PipelineError } from '../errors/index.ts'
import { type KafkaSecrets, kafkaSecrets, setScramCredentials } from '../kafka/index.ts'
import type { Logger } from '../shared/log.ts'
import { kafkaLibsDir } from '../shared/paths.ts'
import { runToolOk } from '../shared/process.ts'
import { retry } from '../shared/retry.ts'
import type { KafkaTls } from './kafka-tls.ts'
import { type Orphan, portAnswers, type Readiness, startServer } from './server.ts'

export interface EmbeddedBroker {
  brokers: string
  process: ChildProcess
  /** the passwords of its users (`<dataDir>/secrets/kafka.json`) */
  secrets: KafkaSecrets
  stop(): Promise<void>
}

export interface BrokerOptions {
  dataDir: string
  port: number
  controllerPort: number
  heapMb: number
  partitions: number
  log: Logger
  /** with a keystore, the client listener is SASL_SSL (`brokerTls` checks it first) */
  tls?: KafkaTls
  /** how long to wait for the broker to answer */
  timeoutMs?: number
}

/**
 * A single combined broker+controller in KRaft mode, run from the jars that `scripts/setup.mjs`
 * fetched with Maven. Storage is formatted on first start and kept under `<dataDir>/kafka`.
 * Clients log in with SCRAM-SHA-512 and the StandardAuthorizer denies what no ACL allows
 * (docs/security.md, "Kafka"); the users' passwords are set at every start (`provisionUsers`).
 */
export async function startEmbeddedKafka(opts: BrokerOptions): Promise<EmbeddedBroker> {
  await requireJars()
  const home = join(opts.dataDir, 'kafka')
  const logsDir = join(home, 'logs')
  const logDir = join(home, 'data')
  await mkdir(logsDir, { recursive: true })
  const secrets = kafkaSecrets(opts.dataDir)
  const propsFile = join(home, 'server.properties')
  // It holds the admin's and the controller's passwords: 0600, and never logged.
  await writeFile(propsFile, serverProperties(opts, logDir, secrets), { mode: 0o600 })
  await chmod(propsFile, 0o600) // a file written by an earlier version kept its mode
  const log4jFile = join(home, 'log4j2.properties')
  await writeFile(log4jFile, LOG4J)
  const javaArgs = javaArgsFor(opts.heapMb, log4jFile, logsDir)
  await formatOnce(javaArgs, propsFile, logDir, secrets, opts.log)
  const server = await startServer({
    orphan: brokerOrphan(join(home, 'broker.pid')),
    prepare: async () => {
      if (await portAnswers(opts.port)) {
        throw new PipelineError(
          'SERVICE_START_FAILED',
          `port ${opts.port} is already in use: stop what listens there, set EVF_KAFKA_PORT, or point KAFKA_BROKERS at that broker`,
        )
      }
    },
    spawn: () => spawnBroker(javaArgs, propsFile, logsDir),
    writePidFile: true,
    ready: answering(opts.port, join(logsDir, 'server.log'), opts.timeoutMs ?? 90_000),
    stopping: BROKER_STOP,
    log: opts.log,
  })
  try {
    await provisionUsers([opts.controllerPort], secrets)
  } catch (error) {
    await server.stop()
    throw error
  }
  return { brokers: `127.0.0.1:${opts.port}`, process: server.process, secrets, stop: server.stop }
}

/** A broker's clean stop: SIGTERM, SIGKILL after 30 s. */
export const BROKER_STOP = { signal: 'SIGTERM', graceMs: 30_000 } as const

/** A broker left running by a stack that was killed still holds the log dirs: stopped first. */
export const brokerOrphan = (pidFile: string): Orphan => ({
  pidFile,
  message: 'stopping a Kafka broker left running by an earlier stack',
  ...BROKER_STOP,
})

/** A broker is ready when its client port answers; one that exits or never answers fails with its log's tail. */
export const answering = (port: number, serverLog: string, timeoutMs: number): Readiness => ({
  probe: async () => {
    if (!(await portAnswers(port))) throw new Error(`nothing answers on 127.0.0.1:${port}`)
  },
  timeoutMs,
  intervalMs: 250,
  logFile: serverLog,
  tailLines: 30,
  failure: ({ exited }) =>
    `Kafka broker ${exited !== null ? `exited with code ${exited}` : 'did not answer in time'} on 127.0.0.1:${port}.`,
})

/** The JVM's arguments for a node: heap, GC, its log4j file and logs folder, the jars. */
export function javaArgsFor(heapMb: number, log4jFile: string, logsDir: string): string[] {
  return [
    `-Xms256m`,
    `-Xmx${heapMb}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    `-Dkafka.logs.dir=${logsDir}`,
    '-cp',
    `${kafkaLibsDir}*`,
  ]
}

export async function requireJars(): Promise<void> {
  if (!existsSync(kafkaLibsDir) || (await readdir(kafkaLibsDir)).length === 0) {
    throw new PipelineError(
      'PREREQUISITE_MISSING',
      `Kafka jars not found in ${kafkaLibsDir}. Run \`node scripts/setup.mjs\` (needs Maven and Java 17+).`,
    )
  }
}

/** Formats the storage on first start, without users: `provisionUsers` sets them at every start. */
export async function formatOnce(
  javaArgs: string[],
  propsFile: string,
  logDir: string,
  secrets: KafkaSecrets,
  log: Logger,
  /** the nodes of one cluster share it */
  clusterId = newClusterId(),
): Promise<void> {
  if (existsSync(join(logDir, 'meta.properties'))) return
  log.info({ clusterId, logDir }, 'formatting Kafka storage (first start)')
  const format = ['kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile]
  await runToolOk('java', [...javaArgs, ...format], {
    secrets: Object.values(secrets),
    hint: 'Java 17+ must be on PATH',
  })
}

/** The broker's JVM, in a process group of its own, its output appended to `logs/stdout.log`. */
export function spawnBroker(javaArgs: string[], propsFile: string, logsDir: string): ChildProcess {
  const out = createWriteStream(join(logsDir, 'stdout.log'), { flags: 'a' })
  const child = spawn('java', [...javaArgs, 'kafka.Kafka', propsFile], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.pipe(out)
  child.stderr?.pipe(out)
  return child
}

/**
 * 16 random bytes, URL-safe base64 without padding, as Kafka's own cluster ids. One starting with
 * "-" would be read as an option by the storage tool's argument parser (1 start in 64 failed
 * so), so such an id is drawn again.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url')
    if (!id.startsWith('-')) return id
  }
}

/**
 * The SCRAM-SHA-512 credentials of `admin`, `etl` and `simulator`, set (or replaced: a rotation)
 * through the controller listener, where the `controller` user logs in with PLAIN as the JAAS
 * line of server.properties defines it. So a data directory formatted by an earlier, unsecured
 * version gets its users at its first secured start, and no password is ever on a command line
 * (the storage tool's `--add-scram` would put them there, and print them).
 */
export async function provisionUsers(controllerPorts: number[], secrets: KafkaSecrets): Promise<void> {
  // The controller may still be electing itself when the broker's port first answers: 20 tries,
  // 0.5 s apart. Any controller of the quorum: the one asked forwards to the active one, or says
  // who it is.
  await retry(
    (attempt) => {
      const port = controllerPorts[attempt % controllerPorts.length]!
      return setScramCredentials(`127.0.0.1:${port}`, secrets.controller, secrets)
    },
    { stop: (_, attempt) => attempt >= 20, delayMs: () => 500 },
  ).catch((error: unknown) => {
    throw new PipelineError(
      'SERVICE_START_FAILED',
      `cannot set the Kafka users' credentials: ${error instanceof Error ? error.message : String(error)}`,
    )
  })
}

/**
 * The listeners, SASL, TLS and authorizer lines of a node (docs/security.md, "Kafka"). The client
 * listener, which the brokers of a cluster also use between themselves, is SASL_PLAINTEXT, or
 * SASL_SSL with `tls`; the KRaft controller listener stays SASL_PLAINTEXT on 127.0.0.1.
 */
export function securityProperties(
  port: number,
  controllerPort: number,
  secrets: KafkaSecrets,
  tls?: KafkaTls,
): string {
  const listener = tls ? 'SASL_SSL' : 'SASL_PLAINTEXT'
  return `listeners=${listener}://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}
advertised.listeners=${listener}://127.0.0.1:${port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=${listener}
listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,${listener}:${listener}
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.${listener.toLowerCase()}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="${secrets.admin}";
sasl.mechanism.controller.protocol=PLAIN
listener.name.controller.sasl.enabled.mechanisms=PLAIN
listener.name.controller.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="controller" password="${secrets.controller}" user_controller="${secrets.controller}";
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
allow.everyone.if.no.acl.found=false
super.users=User:admin;User:controller${tls ? `\n${tlsProperties(tls)}` : ''}`
}

/**
 * The keystore, and the CA the brokers trust when they connect to each other (a PEM truststore);
 * the client's certificate is not asked for (SCRAM is the login), the broker's name is checked.
 */
function tlsProperties(tls: KafkaTls): string {
  return `ssl.keystore.type=PKCS12
ssl.keystore.location=${propertyValue(tls.keystore)}
ssl.keystore.password=${propertyValue(tls.password)}
ssl.key.password=${propertyValue(tls.password)}
ssl.truststore.type=PEM
ssl.truststore.location=${propertyValue(tls.caFile)}
ssl.client.auth=none
ssl.endpoint.identification.algorithm=https`
}

/** A value as java.util.Properties reads it back: `\\`, a leading space and non-ASCII escaped. */
const propertyValue = (value: string): string =>
  value
    .replaceAll('\\', '\\\\')
    .replace(/^ /, '\\ ')
    .replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)

function serverProperties(opts: BrokerOptions, logDir: string, secrets: KafkaSecrets): string {
  return `# Written by evf at every start; edit the settings, not this file. Mode 0600: it holds passwords.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${opts.controllerPort}
${securityProperties(opts.port, opts.controllerPort, secrets, opts.tls)}
log.dirs=${logDir}
num.partitions=${opts.partitions}
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=3
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
log.retention.hours=168
`
}

export const LOG4J = `status = warn
appender.file.type = RollingFile
appender.file.name = file
appender.file.fileName = \${sys:kafka.logs.dir}/server.log
appender.file.filePattern = \${sys:kafka.logs.dir}/server.log.%i
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
appender.file.policies.type = Policies
appender.file.policies.size.type = SizeBasedTriggeringPolicy
appender.file.policies.size.size = 20MB
appender.file.strategy.type = DefaultRolloverStrategy
appender.file.strategy.max = 3
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
logger.state.name = state.change.logger
logger.state.level = WARN
`
