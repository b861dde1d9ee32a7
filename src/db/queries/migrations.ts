import type pg from 'pg'

/** Where the migrator keeps what it applied, and the lock two migrators take turns on. */

// Any constant works; it only has to be the same for every migrator of this schema.
const MIGRATION_LOCK = 727_001

/** Waits for the migration lock (a session-level advisory lock on `client`). */
export async function lockMigrations(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
}

/** Releases the migration lock; a failure (a broken connection) is ignored. */
export async function unlockMigrations(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined)
}

/** The versions applied so far; creates `schema_migrations` on a new database. */
export async function appliedVersions(client: pg.ClientBase): Promise<Set<number>> {
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
  const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations')
  return new Set(rows.map((r) => r.version))
}

/** Runs a migration file's statements and records its version; `client` is inside a transaction. */
export async function applyMigration(
  client: pg.ClientBase,
  m: { version: number; name: string; sql: string },
): Promise<void> {
  await client.query(m.sql)
  await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [m.version, m.name])
}
