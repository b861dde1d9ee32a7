import type pg from 'pg'

/**
 * What the embedded servers' start-up runs (services/): roles' passwords, the replication role
 * and slot of a hot standby, and the low-level base backup it is cloned with.
 */

/**
 * Sets `role`'s password (SCRAM, as the server's `password_encryption` says), with `LOGIN` unless
 * `login` is false. ALTER ROLE takes no parameters: the password is quoted as a literal by the
 * server (`format('%L')`), never by us.
 */
export async function setRolePassword(
  client: pg.ClientBase,
  role: string,
  password: string,
  login = true,
): Promise<void> {
  const { rows } = await client.query<{ sql: string }>(
    `SELECT format('ALTER ROLE %I ${login ? 'LOGIN ' : ''}PASSWORD %L', $1::text, $2::text) AS sql`,
    [role, password],
  )
  await client.query(rows[0]!.sql)
}

/** The role a standby streams WAL as (SCRAM), created or its password replaced: idempotent. */
export async function ensureReplicationRole(
  client: pg.ClientBase,
  role: string,
  password: string,
): Promise<void> {
  const { rows } = await client.query<{ sql: string }>(
    `SELECT format(CASE WHEN EXISTS (SELECT FROM pg_roles WHERE rolname = $1)
                   THEN 'ALTER ROLE %I WITH REPLICATION LOGIN PASSWORD %L'
                   ELSE 'CREATE ROLE %I WITH REPLICATION LOGIN PASSWORD %L' END, $1::text, $2::text) AS sql`,
    [role, password],
  )
  await client.query(rows[0]!.sql)
}

/** A physical replication slot, reserving WAL from now on, unless it exists. */
export async function ensureReplicationSlot(client: pg.ClientBase, slot: string): Promise<void> {
  await client.query(
    `SELECT pg_create_physical_replication_slot($1, true)
     WHERE NOT EXISTS (SELECT FROM pg_replication_slots WHERE slot_name = $1)`,
    [slot],
  )
}

/** The server's data directory, as it sees it. */
export async function dataDirectory(client: pg.ClientBase): Promise<string> {
  return (await client.query<{ d: string }>("SELECT current_setting('data_directory') AS d")).rows[0]!.d
}

/**
 * A base backup by the low-level API: `copy` runs between `pg_backup_start` and `pg_backup_stop`,
 * in `client`'s session, which the backup belongs to; answers the backup label and tablespace
 * map the copy must be given.
 */
export async function lowLevelBackup(
  client: pg.ClientBase,
  label: string,
  copy: () => Promise<void>,
): Promise<{ labelfile: string; spcmapfile: string | null }> {
  await client.query(`SELECT pg_backup_start($1, fast => true)`, [label])
  await copy()
  const { rows } = await client.query<{ labelfile: string; spcmapfile: string | null }>(
    'SELECT labelfile, spcmapfile FROM pg_backup_stop(wait_for_archive => false)',
  )
  return rows[0]!
}
