import assert from 'node:assert/strict'
import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { kafkaSecrets } from '../../src/kafka/index.ts'
import { mkdirPrivate } from '../../src/shared/fs.ts'

const modeOf = (path: string) => statSync(path).mode & 0o777

describe('a private directory', () => {
  it('is 0700 itself, while the parents it had to make keep the default mode', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'evf-fs-'))
    t.after(() => rmSync(root, { recursive: true, force: true }))
    const dataDir = join(root, 'a', '.stack')
    mkdirPrivate(join(dataDir, 'secrets'))
    assert.equal(modeOf(join(dataDir, 'secrets')), 0o700)
    for (const dir of [dataDir, join(root, 'a')]) assert.equal(modeOf(dir), 0o777 & ~process.umask())
    mkdirPrivate(join(dataDir, 'secrets')) // an existing one is kept
  })

  it('made first, by the Kafka secrets of a fresh data directory, leaves that directory open to PostgreSQL', (t) => {
    const root = mkdtempSync(join(tmpdir(), 'evf-fs-'))
    t.after(() => rmSync(root, { recursive: true, force: true }))
    const dataDir = join(root, '.stack')
    kafkaSecrets(dataDir)
    assert.equal(modeOf(join(dataDir, 'secrets')), 0o700)
    assert.notEqual(modeOf(dataDir) & 0o055, 0, 'others may enter the data directory')
  })
})
