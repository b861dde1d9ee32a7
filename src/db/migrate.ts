import { readdir, readFile } from 'node:fs/promises'
import { join } from 'node:path'
import type pg from 'pg'
import { migrationsDir } from '../shared/paths.ts'
import { applyCatalog } from './queries/catalog.ts'
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
 * two processes starting at once do not race, then re-applies the catalog's views. Returns the
 * versions it applied. The statements are in queries/migrations.ts and queries/catalog.ts.
 */
export async function migrate(pool: pg.Pool): Promise<number[]> {
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
    // The repeatable step: the catalog's table and the BI views, re-derived from src/catalog.
    await transaction(client, () =>
      applyCatalog(client).catch((error: Error) => {
        throw new Error(`applying the catalog's views failed: ${error.message}`, { cause: error })
      }),
    )
    return applied
  } finally {
    await unlockMigrations(client)
    client.release()
  }
}
