import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type pg from 'pg'
import { migrationsDir } from '../shared/paths.ts'
import { applyCatalog } from './views.ts'

export interface Migration {
  version: number
  name: string
  sql: string
}

/** Numbered files `NNNN_name.sql`, in order. */
export async function readMigrations(dir = migrationsDir): Promise<Migration[]> {
  const files = (await readdir(dir)).filter((f) => /^\d{4}_.+\.sql$/.test(f)).sort()
  return Promise.all(
    files.map(async (file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: await readFile(join(dir, file), 'utf8'),
    })),
  )
}

// Any constant works; it only has to be the same for every migrator of this schema.
const MIGRATION_LOCK = 727_001

/**
 * Applies the migrations not yet applied, each in its own transaction, under an advisory lock so
 * two processes starting at once do not race, then re-applies the catalog's views. Returns the
 * versions it applied.
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
  const migrations = await readMigrations()
  const client = await pool.connect()
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
    await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
      version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations')
    const done = new Set(rows.map((r) => r.version))
    const applied: number[] = []
    for (const m of migrations) {
      if (done.has(m.version)) continue
      await client.query('BEGIN')
      try {
        await client.query(m.sql)
        await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [
          m.version,
          m.name,
        ])
        await client.query('COMMIT')
      } catch (error) {
        await client.query('ROLLBACK')
        throw new Error(`migration ${m.version} (${m.name}) failed: ${(error as Error).message}`, {
          cause: error,
        })
      }
      applied.push(m.version)
    }
    // The repeatable step: the catalog's table and the BI views, re-derived from src/catalog.
    await client.query('BEGIN')
    try {
      await applyCatalog(client)
      await client.query('COMMIT')
    } catch (error) {
      await client.query('ROLLBACK')
      throw new Error(`applying the catalog's views failed: ${(error as Error).message}`, { cause: error })
    }
    return applied
  } finally {
    await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => undefined)
    client.release()
  }
}
