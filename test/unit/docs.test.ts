import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { flagFor, settings } from '../../src/config/index.ts'
import { errorCodes } from '../../src/errors/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'

const readme = readFileSync(`${repoRoot}README.md`, 'utf8')

describe('the README', () => {
  it('gives the two commands of the contract', () => {
    assert.match(readme, /^npm start\b/m)
    assert.match(readme, /^npm test\b/m)
  })

  it('documents every setting with its environment variable, flag and description', () => {
    for (const [key, def] of Object.entries(settings)) {
      const row = readme.split('\n').find((line) => new RegExp(`^\\|\\s*\`${def.env}\`\\s*\\|`).test(line))
      assert.ok(row, `README has no row for ${def.env}`)
      assert.ok(row.includes(`\`${flagFor(key)}\``), `${def.env}: flag`)
      assert.ok(row.includes(def.doc), `${def.env}: description`)
    }
  })

  it('documents every CLI command and every exit code', () => {
    for (const cmd of [
      'stack up',
      'simulate',
      'etl run',
      'etl follow',
      'etl schedule',
      'api',
      'db migrate',
      'config',
    ]) {
      assert.ok(readme.includes(`\`evf ${cmd}`), `README lacks evf ${cmd}`)
    }
    for (const { exitCode } of Object.values(errorCodes)) {
      assert.ok(readme.includes(`\`${exitCode}\``), `README lacks exit code ${exitCode}`)
    }
  })
})
