import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { type Dirent, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { chmod, copyFile, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, relative, sep } from 'node:path'
import pg from 'pg'
import { dataDirectory, ensureReplicationRole, ensureReplicationSlot, lowLevelBackup } from '../db/index.ts'
import { mkdirPrivate } from '../shared/fs.ts'
import type { Logger } from '../shared/log.ts'
import {
  answering,
  type EmbeddedDatabase,
  POSTGRES_STOP,
  postgresOrphan,
  REPLICATION_ROLE,
  serverUser,
  spawnServer,
  writeHba,
} from './postgres.ts'
import { freePort, startServer } from './server.ts'

const SLOT = 'evf_standby'

/**
 * A hot standby of the embedded primary, kept by streaming replication (`stack up
 * --postgres-replica`): read-only, a few milliseconds behind, for the API's reads. The embedded
 * binaries have no `pg_basebackup`, so it is made once with the low-level backup API
 * (`pg_backup_start`, a copy of the data directory, `pg_backup_stop`) and then streams from a
 * replication slot, which keeps the WAL it has not received yet. Later starts resume it.
 */
export async function startStandby(opts: {
  primaryUrl: string
  dataDir: string
  port: number
  log: Logger
}): Promise<EmbeddedDatabase> {
  const dir = join(opts.dataDir, 'postgres-standby')
  const logFile = join(opts.dataDir, 'logs', 'postgres-standby.log')
  const primary = new URL(opts.primaryUrl)
  await mkdir(join(opts.dataDir, 'logs'), { recursive: true })
  const password = replicationPassword(opts.dataDir)
  const port = opts.port || (await freePort())
  const server = await startServer({
    // A standby left running by a stack that was killed still holds its directory.
    orphan: postgresOrphan(dir),
    prepare: async () => {
      await prepareReplication(opts.primaryUrl, password)
      if (!existsSync(join(dir, 'PG_VERSION'))) await cloneFromPrimary(opts.primaryUrl, dir, opts.log)
      // Where the primary is may change between starts (a free port): said again at every start.
      await writeStandbyConf(dir, Number(primary.port), password)
      await writeHba(dir)
    },
    spawn: () => spawnServer(dir, port, logFile),
    writePidFile: false,
    ready: answering(port, () => decodeURIComponent(primary.password), dir, logFile),
    stopping: POSTGRES_STOP,
    log: opts.log,
  })
  const url = new URL(opts.primaryUrl)
  url.port = String(port)
  return { url: url.toString(), port, stop: server.stop }
}

/** The replication role's password: generated once per data directory (secrets/, 0600). */
function replicationPassword(dataDir: string): string {
  const file = join(dataDir, 'secrets', 'postgres-replication')
  if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  const password = randomBytes(24).toString('base64url')
  mkdirPrivate(join(dataDir, 'secrets'))
  writeFileSync(file, `${password}\n`, { mode: 0o600 })
  return password
}

/** The replication role (SCRAM) and the slot, on the primary; both idempotent. */
async function prepareReplication(primaryUrl: string, password: string): Promise<void> {
  const admin = new pg.Client({ connectionString: primaryUrl })
  await admin.connect()
  try {
    await ensureReplicationRole(admin, REPLICATION_ROLE, password)
    // Reserved now, so the WAL written during the copy is kept until the standby streams it.
    await ensureReplicationSlot(admin, SLOT)
  } finally {
    await admin.end()
  }
}

/** What a base backup leaves out (PostgreSQL's documentation, "Making a Base Backup Using the Low Level API"). */
const EMPTIED_DIRS = new Set([
  'pg_wal',
  'pg_replslot',
  'pg_dynshmem',
  'pg_notify',
  'pg_serial',
  'pg_snapshots',
  'pg_stat_tmp',
  'pg_subtrans',
])
const SKIPPED_FILES = new Set([
  'postmaster.pid',
  'postmaster.opts',
  'backup_label',
  'tablespace_map',
  'backup_manifest',
  'postgresql.auto.conf.tmp',
  'current_logfiles.tmp',
  'pg_internal.init',
])

/** A base backup of the primary by the low-level API, into `dir`, made a standby. */
async function cloneFromPrimary(primaryUrl: string, dir: string, log: Logger): Promise<void> {
  const t0 = performance.now()
  const admin = new pg.Client({ connectionString: primaryUrl })
  await admin.connect()
  const source = await dataDirectory(admin)
  await rm(dir, { recursive: true, force: true })
  const keep = (path: string) => {
    const parts = relative(source, path).split(sep)
    if (parts[0] === '') return true
    if (parts.length >= 2 && EMPTIED_DIRS.has(parts[0]!))
      return (
        parts[0] === 'pg_wal' && parts.length === 2 && ['archive_status', 'summaries'].includes(parts[1]!)
      )
    const name = parts[parts.length - 1]!
    return !SKIPPED_FILES.has(name) && !name.startsWith('pgsql_tmp')
  }
  try {
    const backup = await lowLevelBackup(admin, 'evf-standby', () => copyTree(source, dir, keep))
    await writeFile(join(dir, 'backup_label'), backup.labelfile)
    if (backup.spcmapfile) await writeFile(join(dir, 'tablespace_map'), backup.spcmapfile)
  } finally {
    await admin.end()
  }
  await mkdir(join(dir, 'pg_wal', 'archive_status'), { recursive: true })
  await writeFile(join(dir, 'standby.signal'), '')
  await chmod(dir, 0o700)
  const ids = serverUser()
  if (ids) execFileSync('chown', ['-R', `${ids.uid}:${ids.gid}`, dir])
  log.info({ dir, ms: Math.round(performance.now() - t0) }, 'PostgreSQL standby cloned from the primary')
}

/**
 * Copies a live data directory: a file or directory that goes away during the copy (a database
 * dropped, a temporary file) is skipped, as pg_basebackup does; replaying the WAL from the
 * backup's start makes the copy consistent.
 */
async function copyTree(from: string, to: string, keep: (path: string) => boolean): Promise<void> {
  const gone = (e: unknown) => (e as NodeJS.ErrnoException).code === 'ENOENT'
  let entries: Dirent[]
  try {
    entries = await readdir(from, { withFileTypes: true })
  } catch (e) {
    if (gone(e)) return
    throw e
  }
  await mkdir(to, { recursive: true })
  for (const entry of entries) {
    const source = join(from, entry.name)
    if (!keep(source)) continue
    const target = join(to, entry.name)
    if (entry.isDirectory()) await copyTree(source, target, keep)
    else
      await copyFile(source, target).catch((e: unknown) => {
        if (!gone(e)) throw e
      })
  }
}

/** primary_conninfo and the slot, in the standby's postgresql.auto.conf (0600: it holds a password). */
async function writeStandbyConf(dir: string, primaryPort: number, password: string): Promise<void> {
  const file = join(dir, 'postgresql.auto.conf')
  const kept = (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((l) => l && !/^(primary_conninfo|primary_slot_name)\s*=/.test(l))
  const conninfo = `host=127.0.0.1 port=${primaryPort} user=${REPLICATION_ROLE} password=${password} application_name=evf_standby`
  kept.push(`primary_conninfo = '${conninfo}'`, `primary_slot_name = '${SLOT}'`, '')
  await writeFile(file, kept.join('\n'), { mode: 0o600 })
  const ids = serverUser()
  if (ids) execFileSync('chown', [`${ids.uid}:${ids.gid}`, file])
}
