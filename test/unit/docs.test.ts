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
      'catalog',
      'tokens create',
      'login-url',
      'tls self-signed',
    ]) {
      assert.ok(readme.includes(`\`evf ${cmd}`), `README lacks evf ${cmd}`)
    }
    for (const { exitCode, meaning } of Object.values(errorCodes)) {
      assert.ok(
        readme.replaceAll(/\s+/g, ' ').includes(`\`${exitCode}\` ${meaning}`),
        `README lacks exit code ${exitCode} as "${meaning}"`,
      )
    }
  })
})

describe('docs/etl.md', () => {
  const etlDoc = readFileSync(`${repoRoot}docs/etl.md`, 'utf8')

  it('documents every reason code the ETL can give', async () => {
    const { reasonCodes } = await import('../../src/etl/index.ts')
    for (const code of Object.keys(reasonCodes)) {
      assert.match(etlDoc, new RegExp(`^\\|\\s*\`${code}\`\\s*\\|`, 'm'), `docs/etl.md lacks ${code}`)
    }
  })

  it('documents every exit code with its meaning', () => {
    for (const { exitCode, meaning } of Object.values(errorCodes)) {
      const row = new RegExp(`^\\|\\s*${exitCode}\\s*\\|([^|]*)\\|`, 'm').exec(etlDoc)
      assert.ok(row, `docs/etl.md lacks exit code ${exitCode}`)
      assert.ok(row[1]!.trim().startsWith(meaning), `docs/etl.md: exit code ${exitCode} is "${meaning}"`)
    }
  })
})

describe('docs/api.md', () => {
  it('documents every problem code with its status', async () => {
    const { problems } = await import('../../src/api/index.ts')
    const apiDoc = readFileSync(`${repoRoot}docs/api.md`, 'utf8')
    for (const [code, { status }] of Object.entries(problems)) {
      assert.match(
        apiDoc,
        new RegExp(`^\\|\\s*\`${code}\`\\s*\\|\\s*${status}\\s*\\|`, 'm'),
        `docs/api.md lacks ${code} (${status})`,
      )
    }
  })
})
