import { createServer } from 'node:net'
import { join } from 'node:path'
import { type Config, type SettingKey, settings } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { brokerOrphan, nodePorts, postgresOrphan, stopOrphan } from '../services/index.ts'
import type { Logger } from '../shared/log.ts'

/** A port `stack up` will listen on, who listens there, and the setting that moves it. */
export interface PortToBind {
  host: string
  port: number
  what: string
  setting: SettingKey
}

/** Every port `stack up` binds with `config` (a port of 0, any free one, is nobody's). */
export function portsToBind(config: Config): PortToBind[] {
  const loopback = '127.0.0.1'
  const ports: PortToBind[] = []
  if (!config.databaseUrl && config.databasePort) {
    ports.push({ host: loopback, port: config.databasePort, what: 'PostgreSQL', setting: 'databasePort' })
  }
  for (let i = 1; !config.kafkaBrokers && i <= config.kafkaNodes; i++) {
    const node = config.kafkaNodes > 1 ? `Kafka node ${i}` : 'Kafka'
    const { port, controllerPort } = nodePorts(
      { port: config.kafkaPort, controllerPort: config.kafkaControllerPort },
      i,
    )
    ports.push({ host: loopback, port, what: `${node} (clients)`, setting: 'kafkaPort' })
    ports.push({
      host: loopback,
      port: controllerPort,
      what: `${node} (controller)`,
      setting: 'kafkaControllerPort',
    })
  }
  if (config.orchestrator === 'airflow') {
    ports.push({ host: loopback, port: config.airflowPort, what: 'the Airflow UI', setting: 'airflowPort' })
  }
  if (config.apiPort)
    ports.push({ host: config.apiHost, port: config.apiPort, what: 'the API', setting: 'apiPort' })
  return ports
}

/**
 * Refuses the start, before anything runs, when a port the stack will bind is taken or given
 * twice, naming the setting that moves it. Without this a busy API port was found only once
 * PostgreSQL and Kafka ran, and the API died. Servers an earlier, killed stack left running
 * (their pid files) are stopped first, as their own start would.
 */
export async function checkPorts(config: Config, log: Logger): Promise<void> {
  if (!config.databaseUrl) await stopOrphan(postgresOrphan(join(config.dataDir, 'postgres')), log)
  if (!config.kafkaBrokers) await stopOrphanBrokers(config, log)
  const seen = new Map<number, PortToBind>()
  for (const p of portsToBind(config)) {
    const other = seen.get(p.port)
    if (other) {
      throw new PipelineError(
        'CONFIG_INVALID',
        `port ${p.port} is given to both ${other.what} (${settings[other.setting].env}) and ${p.what} (${settings[p.setting].env}): set one of them to another port`,
      )
    }
    seen.set(p.port, p)
    const error = await cannotListen(p.host, p.port)
    if (error) throw busy(p, error)
  }
}

function busy(p: PortToBind, error: NodeJS.ErrnoException): PipelineError {
  const env = settings[p.setting].env
  const elsewhere = p.setting.startsWith('kafka') ? ', or point KAFKA_BROKERS at that broker' : ''
  const message =
    error.code === 'EADDRINUSE'
      ? `port ${p.port} (${p.what}) is already in use: stop what listens there, set ${env}${elsewhere}`
      : `${p.what} cannot listen on ${p.host}:${p.port} (${error.code ?? error.message}): set ${env}`
  return new PipelineError('SERVICE_START_FAILED', message, { cause: error })
}

/** Why nothing could listen on `host:port` now, or undefined when it can. */
function cannotListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer()
    server.once('error', resolve)
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(undefined)))
  })
}

/** Brokers a killed stack left running hold their ports: stopped, as the broker's start does. */
async function stopOrphanBrokers(config: Config, log: Logger): Promise<void> {
  const home = join(config.dataDir, 'kafka')
  const homes =
    config.kafkaNodes > 1
      ? Array.from({ length: config.kafkaNodes }, (_, k) => join(home, `node-${k + 1}`))
      : [home]
  for (const dir of homes) await stopOrphan(brokerOrphan(join(dir, 'broker.pid')), log)
}
