import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { connect } from 'node:net'
import { join } from 'node:path'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { kafkaLibsDir } from '../shared/paths.ts'
import { alive, stopChild, stopPid } from '../shared/process.ts'
import { sleep } from '../shared/time.ts'

export interface EmbeddedBroker {
  brokers: string
  process: ChildProcess
  stop(): Promise<void>
}

interface BrokerOptions {
  dataDir: string
  port: number
  controllerPort: number
  heapMb: number
  partitions: number
  log: Logger
  /** how long to wait for the broker to answer */
  timeoutMs?: number
}

/**
 * A single combined broker+controller in KRaft mode, run from the jars that `scripts/setup.mjs`
 * fetched with Maven. Storage is formatted on first start and kept under `<dataDir>/kafka`.
 */
export async function startEmbeddedKafka(opts: BrokerOptions): Promise<EmbeddedBroker> {
  await requireJars()
  const home = join(opts.dataDir, 'kafka')
  const logsDir = join(home, 'logs')
  const logDir = join(home, 'data')
  await mkdir(logsDir, { recursive: true })
  const propsFile = join(home, 'server.properties')
  await writeFile(propsFile, serverProperties(opts, logDir))
  const log4jFile = join(home, 'log4j2.properties')
  await writeFile(log4jFile, LOG4J)
  const javaArgs = [
    `-Xms256m`,
    `-Xmx${opts.heapMb}m`,
    '-XX:+UseG1GC',
    '-XX:MaxGCPauseMillis=20',
    '-Djava.awt.headless=true',
    `-Dlog4j2.configurationFile=${log4jFile}`,
    `-Dkafka.logs.dir=${logsDir}`,
    '-cp',
    `${kafkaLibsDir}*`,
  ]
  if (!existsSync(join(logDir, 'meta.properties'))) {
    const clusterId = newClusterId()
    opts.log.info({ clusterId, logDir }, 'formatting Kafka storage (first start)')
    await run('java', [...javaArgs, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile])
  }
  const pidFile = join(home, 'broker.pid')
  await stopOrphan(pidFile, opts.log)
  if (await portAnswers(opts.port)) {
    throw new PipelineError(
      'SERVICE_START_FAILED',
      `port ${opts.port} is already in use: stop what listens there, set EVF_KAFKA_PORT, or point KAFKA_BROKERS at that broker`,
    )
  }
  const child = spawnBroker(javaArgs, propsFile, logsDir)
  await writeFile(pidFile, String(child.pid))
  await untilAnswers(child, opts.port, join(logsDir, 'server.log'), opts.timeoutMs ?? 90_000)
  return {
    brokers: `127.0.0.1:${opts.port}`,
    process: child,
    stop: async () => {
      await stopChild(child, 30_000)
      await rm(pidFile, { force: true })
    },
  }
}

async function requireJars(): Promise<void> {
  if (!existsSync(kafkaLibsDir) || (await readdir(kafkaLibsDir)).length === 0) {
    throw new PipelineError(
      'PREREQUISITE_MISSING',
      `Kafka jars not found in ${kafkaLibsDir}. Run \`node scripts/setup.mjs\` (needs Maven and Java 17+).`,
    )
  }
}

/** The broker's JVM, in a process group of its own, its output appended to `logs/stdout.log`. */
function spawnBroker(javaArgs: string[], propsFile: string, logsDir: string): ChildProcess {
  const out = createWriteStream(join(logsDir, 'stdout.log'), { flags: 'a' })
  const child = spawn('java', [...javaArgs, 'kafka.Kafka', propsFile], {
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  child.stdout?.pipe(out)
  child.stderr?.pipe(out)
  return child
}

/** Waits until the broker's port answers; one that exits or never answers fails with its log's tail. */
async function untilAnswers(child: ChildProcess, port: number, serverLog: string, timeoutMs: number) {
  let exited: number | null = null
  child.once('exit', (code) => {
    exited = code ?? -1
  })
  const deadline = Date.now() + timeoutMs
  while (!(await portAnswers(port))) {
    if (exited !== null || Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new PipelineError(
        'SERVICE_START_FAILED',
        `Kafka broker ${exited !== null ? `exited with code ${exited}` : 'did not answer in time'} on 127.0.0.1:${port}.\n` +
          `Last lines of ${serverLog}:\n${await tailOf(serverLog, 30)}`,
      )
    }
    await sleep(250)
  }
}

/** A broker left running by a stack that was killed still holds the log dirs: stop it first. */
async function stopOrphan(pidFile: string, log: Logger): Promise<void> {
  if (!existsSync(pidFile)) return
  const pid = Number(await readFile(pidFile, 'utf8'))
  if (!pid || !alive(pid)) return
  log.warn({ pid }, 'stopping a Kafka broker left running by an earlier stack')
  await stopPid(pid, 'SIGTERM', 30_000)
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

function serverProperties(opts: BrokerOptions, logDir: string): string {
  return `# Written by evf at every start; edit the settings, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:${opts.controllerPort}
listeners=PLAINTEXT://127.0.0.1:${opts.port},CONTROLLER://127.0.0.1:${opts.controllerPort}
advertised.listeners=PLAINTEXT://127.0.0.1:${opts.port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
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

const LOG4J = `status = warn
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

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.on('error', () => resolve(false))
  })
}

function run(cmd: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d) => (output += d))
    child.stderr.on('data', (d) => (output += d))
    child.on('error', (e) =>
      reject(
        new PipelineError(
          'PREREQUISITE_MISSING',
          `cannot run ${cmd}: ${e.message} (Java 17+ must be on PATH)`,
        ),
      ),
    )
    child.on('exit', (code) =>
      code === 0
        ? resolve()
        : reject(new PipelineError('SERVICE_START_FAILED', `${cmd} exited ${code}:\n${output}`)),
    )
  })
}

async function tailOf(file: string, lines: number): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n')
  } catch {
    return '(no log written)'
  }
}
