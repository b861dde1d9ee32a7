import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import pg from 'pg'
import { repoRoot } from '../../src/shared/paths.ts'

const serverUrl = () => {
  const url = process.env.EVF_TEST_DATABASE_URL
  if (!url) throw new Error('EVF_TEST_DATABASE_URL is not set: run the tests with `npm test`')
  return new URL(url)
}

async function connect(user: string, password: string): Promise<pg.Client> {
  const url = serverUrl()
  const client = new pg.Client({
    host: url.hostname,
    port: Number(url.port),
    user,
    password,
    database: 'evf',
  })
  await client.connect()
  return client
}

describe('the embedded PostgreSQL', () => {
  it('uses SCRAM for every role, listens on loopback, and lets in only the pipeline’s roles', async (t) => {
    const admin = new pg.Client({ connectionString: serverUrl().toString() })
    await admin.connect()
    // Roles belong to the server, which other test files share at the same time: a name of its own.
    const mallory = `mallory_${randomUUID().slice(0, 8)}`
    t.after(async () => {
      await admin.query(`DROP ROLE IF EXISTS ${mallory}`)
      await admin.end()
    })

    const { rows: weak } = await admin.query(
      `SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL AND rolpassword NOT LIKE 'SCRAM-SHA-256$%'`,
    )
    assert.deepEqual(weak, [], 'every stored password is a SCRAM verifier')
    const { rows: rules } = await admin.query<{ auth_method: string; user_name: string[]; address: string }>(
      'SELECT auth_method, user_name, address FROM pg_hba_file_rules WHERE error IS NULL',
    )
    assert.ok(rules.length >= 3)
    for (const r of rules) {
      assert.ok(['scram-sha-256', 'reject'].includes(r.auth_method), `pg_hba: ${JSON.stringify(r)}`)
      if (r.auth_method === 'scram-sha-256') assert.equal(r.address, '127.0.0.1', 'loopback only')
    }
    const { rows: listen } = await admin.query<{ setting: string }>(
      "SELECT setting FROM pg_settings WHERE name = 'listen_addresses'",
    )
    assert.equal(listen[0]!.setting, '127.0.0.1')

    // The superuser's password is generated (0600 on disk), not the package's default.
    const file = join(repoRoot, '.test-stack', 'secrets', 'postgres')
    assert.equal(statSync(file).mode & 0o777, 0o600)
    await assert.rejects(connect('postgres', 'postgres'), /password authentication failed/)

    // A role that is not the pipeline's is refused by pg_hba even with the right password.
    await admin.query(`CREATE ROLE ${mallory} LOGIN PASSWORD 'mallory-password-1234'`)
    await assert.rejects(connect(mallory, 'mallory-password-1234'), /pg_hba\.conf rejects/)
  })
})
