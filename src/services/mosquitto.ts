import { execFileSync, spawn, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { PipelineError } from '../errors/index.ts'
import { mkdirPrivate } from '../shared/fs.ts'
import type { Logger } from '../shared/log.ts'
import { freePort, portAnswers, startServer } from './server.ts'

/** Who logs in to the embedded broker: `ingest` (evf ingest) and `device` (the simulator playing the plant's machines). */
export const MQTT_USERS = ['ingest', 'device'] as const
export type MqttUser = (typeof MQTT_USERS)[number]

export interface EmbeddedMqtt {
  url: string
  port: number
  /** each user's password, from `<dataDir>/secrets/mqtt.json` */
  passwords: Record<MqttUser, string>
  stop(): Promise<void>
}

/** Where Debian puts the broker (`/usr/sbin` is not on every user's PATH). */
export function mosquittoBinary(): string | undefined {
  const found = spawnSync('sh', ['-c', 'command -v mosquitto'], { encoding: 'utf8' }).stdout.trim()
  if (found) return found
  return existsSync('/usr/sbin/mosquitto') ? '/usr/sbin/mosquitto' : undefined
}

/**
 * What each user may do (a Mosquitto ACL file): ingest reads everything and writes only
 * Sparkplug commands and its STATE; a device writes its readings and births, and reads the
 * commands and host STATE a Sparkplug edge node listens to.
 */
const ACL = `user ingest
topic read #
topic write spBv1.0/+/NCMD/#
topic write spBv1.0/+/DCMD/#
topic write spBv1.0/STATE/#

user device
topic write evf/#
topic write spBv1.0/#
topic read spBv1.0/+/NCMD/#
topic read spBv1.0/+/DCMD/#
topic read spBv1.0/STATE/#
`

function passwords(dataDir: string): Record<MqttUser, string> {
  const file = join(dataDir, 'secrets', 'mqtt.json')
  const known = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<MqttUser, string>>)
    : {}
  const all = { ...known }
  const missing = MQTT_USERS.filter((u) => !known[u])
  for (const u of missing) all[u] = randomBytes(18).toString('base64url')
  if (missing.length > 0) {
    mkdirPrivate(join(dataDir, 'secrets'))
    writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
  }
  return all as Record<MqttUser, string>
}

/** Reads the stored passwords of the embedded broker's users (for `evf ingest` and `evf simulate` next to a stack). */
export function readMqttPasswords(dataDir: string): Partial<Record<MqttUser, string>> | undefined {
  const file = join(dataDir, 'secrets', 'mqtt.json')
  return existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<MqttUser, string>>)
    : undefined
}

/**
 * Starts Debian's Mosquitto 2 on 127.0.0.1 (a free port unless `port` is given) with its data
 * under `<dataDir>/mosquitto`: persistence on (a persistent session's queued QoS 1 messages
 * survive a broker restart), no anonymous login, users `ingest` and `device` with an ACL. Not
 * installed: PREREQUISITE_MISSING saying how to install it or to set EVF_MQTT_URL.
 */
export async function startEmbeddedMosquitto(opts: {
  dataDir: string
  port?: number
  log: Logger
}): Promise<EmbeddedMqtt> {
  const binary = mosquittoBinary()
  if (!binary)
    throw new PipelineError(
      'PREREQUISITE_MISSING',
      'the embedded MQTT broker is Debian’s Mosquitto, which is not installed: `apt-get install mosquitto mosquitto-clients` (as root), or set EVF_MQTT_URL to your broker',
    )
  const home = join(opts.dataDir, 'mosquitto')
  const logsDir = join(opts.dataDir, 'logs')
  mkdirPrivate(join(home, 'data'))
  mkdirPrivate(logsDir)
  const port = opts.port || (await freePort())
  const secret = passwords(opts.dataDir)
  const confFile = join(home, 'mosquitto.conf')
  const logFile = join(logsDir, 'mosquitto.log')
  const server = await startServer({
    orphan: {
      pidFile: join(home, 'mosquitto.pid'),
      message: 'stopping a Mosquitto left running by an earlier stack',
      signal: 'SIGTERM',
      graceMs: 5_000,
    },
    prepare: async () => {
      if (await portAnswers(port))
        throw new PipelineError(
          'SERVICE_START_FAILED',
          `port ${port} is already in use (embedded MQTT broker)`,
        )
      await writeBrokerFiles(home, port, secret)
    },
    spawn: () => {
      const out = openSync(logFile, 'a')
      return spawn(binary, ['-c', confFile], { stdio: ['ignore', out, out], detached: true })
    },
    writePidFile: true,
    ready: {
      probe: async () => {
        if (!(await portAnswers(port))) throw new Error(`nothing answers on 127.0.0.1:${port} yet`)
      },
      timeoutMs: 15_000,
      intervalMs: 100,
      logFile,
      tailLines: 20,
      failure: ({ exited }) =>
        exited === null ? 'Mosquitto did not answer within 15 s' : `Mosquitto exited with code ${exited}`,
    },
    stopping: { signal: 'SIGTERM', graceMs: 5_000 },
    log: opts.log,
  })
  opts.log.info({ port }, 'embedded MQTT broker (Mosquitto) up')
  return { url: `mqtt://127.0.0.1:${port}`, port, passwords: secret, stop: server.stop }
}

async function writeBrokerFiles(home: string, port: number, secret: Record<MqttUser, string>): Promise<void> {
  const passwdFile = join(home, 'passwd')
  writeFileSync(passwdFile, '', { mode: 0o600 })
  for (const user of MQTT_USERS)
    execFileSync('mosquitto_passwd', ['-b', passwdFile, user, secret[user]], { stdio: 'ignore' })
  await writeFile(join(home, 'acl'), ACL, { mode: 0o600 })
  const lines = [
    `listener ${port} 127.0.0.1`,
    'allow_anonymous false',
    `password_file ${passwdFile}`,
    `acl_file ${join(home, 'acl')}`,
    'persistence true',
    `persistence_location ${join(home, 'data')}/`,
    'autosave_interval 1',
    // A persistent session's backlog while ingest is away or Kafka is down: bounded, in messages.
    'max_queued_messages 1000000',
    'max_inflight_messages 1000',
    'log_dest stderr',
    'log_type error',
    'log_type warning',
    'log_type notice',
    // As root (CI), Mosquitto would drop to user `mosquitto`, which cannot write the data directory.
    ...(process.getuid?.() === 0 ? ['user root'] : []),
  ]
  await writeFile(join(home, 'mosquitto.conf'), `${lines.join('\n')}\n`, { mode: 0o600 })
}
