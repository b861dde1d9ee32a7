import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import pg from 'pg'
import { setRolePassword } from '../db/index.ts'

/**
 * The database roles of least privilege, created (without login) by migration 0003:
 * `evf_etl` loads, `evf_api` reads, `evf_bi` reads the views of schema `bi`, and `evf_sim` (migration
 * 0009) reads the catalog the simulator simulates, `evf_ingest` (0011) reads it and records its sources. This gives them a
 * login with a password kept in the stack's data directory (mode 0600, generated once), and
 * returns the URL each component connects with.
 */
export const ROLES = ['evf_etl', 'evf_api', 'evf_bi', 'evf_sim', 'evf_ingest'] as const
export type Role = (typeof ROLES)[number]

export type RoleUrls = Record<Role, string>

function passwords(dataDir: string): Record<Role, string> {
  const file = join(dataDir, 'db-roles.json')
  const known = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<Record<Role, string>>)
    : {}
  // A role without a password (a new data directory, or one removed to rotate it) gets a new one.
  const missing = ROLES.filter((r) => !known[r])
  const all = { ...known }
  for (const r of missing) all[r] = randomBytes(18).toString('base64url')
  if (missing.length > 0) {
    mkdirSync(dataDir, { recursive: true })
    writeFileSync(file, `${JSON.stringify(all, null, 2)}\n`, { mode: 0o600 })
  }
  return all as Record<Role, string>
}

/** `adminUrl` must be a role that may alter roles (the embedded server's superuser is). */
export async function provisionRoleLogins(adminUrl: string, dataDir: string): Promise<RoleUrls> {
  const secret = passwords(dataDir)
  const client = new pg.Client({ connectionString: adminUrl })
  await client.connect()
  try {
    for (const role of ROLES) await setRolePassword(client, role, secret[role])
  } finally {
    await client.end()
  }
  return Object.fromEntries(
    ROLES.map((role) => {
      const url = new URL(adminUrl)
      url.username = role
      url.password = secret[role]
      return [role, url.toString()]
    }),
  ) as RoleUrls
}
