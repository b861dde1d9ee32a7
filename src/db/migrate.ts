import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type pg from 'pg'
import { DEFAULT_CATALOG } from '../catalog/index.ts'
import { migrationsDir } from '../shared/paths.ts'
import { applyCatalogFile } from './catalog.ts'
import { appliedVersions, applyMigration, lockMigrations, unlockMigrations } from './queries/migrations.ts'
import { transaction } from './queries/transaction.ts'

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

/**
 * Applies the migrations not yet applied, each in its own transaction, under an advisory lock so
 * two processes starting at once do not race, then applies the catalog file (`catalog`, when the
 * database has none or the file changed: see applyCatalogFile) or re-derives the views from the
 * applied one. Returns the versions it applied. The statements are in queries/.
 */
export async function migrate(pool: pg.Pool, opts: { catalog?: string } = {}): Promise<number[]> {
  const migrations = await readMigrations()
  const client = await pool.connect()
  try {
    await lockMigrations(client)
    const done = await appliedVersions(client)
    const applied: number[] = []
    for (const m of migrations) {
      if (done.has(m.version)) continue
      await transaction(client, () =>
        applyMigration(client, m).catch((error: Error) => {
          throw new Error(`migration ${m.version} (${m.name}) failed: ${error.message}`, { cause: error })
        }),
      )
      applied.push(m.version)
    }
    // The repeatable step: the catalog's table and BI views, from the applied catalog.
    await applyCatalogFile(client, opts.catalog ?? DEFAULT_CATALOG).catch((error: Error) => {
      throw new Error(`applying the catalog failed: ${error.message}`, { cause: error })
    })
    return applied
  } finally {
    await unlockMigrations(client)
    client.release()
  }
}
