import assert from 'node:assert/strict'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { rememberSecret, scanForSecrets } from '../secrets.ts'

describe('the secret scan', () => {
  it('finds a remembered secret in the output or in any log file, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'evf-scan-'))
    const secret = 'evf_AAAAAAAAAAAA_c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I'
    rememberSecret(secret, dir)
    rememberSecret('short', dir) // too short to scan for
    assert.deepEqual(scanForSecrets(dir, 'clean output'), [])
    const leaks = scanForSecrets(dir, `token=${secret}`)
    assert.equal(leaks.length, 1)
    assert.ok(!leaks[0]!.includes(secret), 'the report masks the secret')
    mkdirSync(join(dir, 'kafka', 'logs'), { recursive: true })
    writeFileSync(join(dir, 'kafka', 'logs', 'server.log'), `… password="${secret}" …`)
    assert.match(scanForSecrets(dir, '').join(), /kafka\/logs\/server\.log/)
  })
})
