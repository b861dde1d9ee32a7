/**
 * The API's published contract is the truth: schemathesis (PyPI, installed by the setup into
 * .cache/schemathesis/venv) generates requests from `/docs/json`, valid and invalid, sends them to
 * the live API over a socket and checks every answer against the same document — status codes,
 * content types, headers and bodies, 405 with `Allow` for undeclared methods, schema-valid input
 * accepted, schema-invalid input refused. A fixed seed makes a failure reproducible.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { checkRule } from '../../src/alarms/index.ts'
import { buildApp, issueToken, SCOPES } from '../../src/api/index.ts'
import { catalogFromFile } from '../../src/catalog/index.ts'
import { putRule } from '../../src/db/index.ts'
import { runBounded } from '../../src/etl/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { runSimulator } from '../../src/simulator/index.ts'
import { isolatedConfig, log } from '../helpers.ts'
import { rememberSecret } from '../secrets.ts'

const st = join(repoRoot, '.cache/schemathesis/venv/bin/st')
const SEED = 20261129
const EXAMPLES = Number(process.env.EVF_CONTRACT_EXAMPLES ?? 60)

describe('the API contract (schemathesis against /docs/json)', () => {
  it('finds no failure in any check', { timeout: 900_000 }, async (t) => {
    const { config, pool } = await isolatedConfig(t, { simCount: 400, simSensorsPerStation: 2 })
    await runSimulator(config, log)
    await runBounded(config, pool, log)
    // An alarm rule the alarms' operations are sent to (schemathesis.toml names it).
    const rule = { kind: 'spec', station: 'paint', measurement: 'booth_temp' }
    await putRule(pool, checkRule(rule, catalogFromFile()), 'contract test')
    // Rate limiting is part of the contract (429 is declared) but would cut the run short.
    const app = await buildApp({
      pool,
      auth: 'on',
      logger: false,
      config: { apiRateLimit: 0, apiAuthFailures: 0 },
    })
    // A token with every scope; schemathesis also tries without it, and expects the declared 401.
    const { token } = await issueToken(pool, 'api', 'schemathesis', SCOPES)
    rememberSecret(token)
    t.after(() => app.close())
    await app.listen({ host: '127.0.0.1', port: 0 })
    const address = app.server.address()
    assert.ok(address && typeof address === 'object')
    const base = `http://127.0.0.1:${address.port}`

    const args = [
      // Which operations may refuse schema-valid input, and why (the file says).
      '--config-file',
      join(repoRoot, 'test/contract/schemathesis.toml'),
      'run',
      `${base}/docs/json`,
      '--checks',
      'all',
      '--header',
      `Authorization: Bearer ${token}`,
      '--seed',
      String(SEED),
      // Nothing carried over from an earlier run: the seed alone decides the cases.
      '--generation-database',
      'none',
      '--max-examples',
      String(EXAMPLES),
      '--workers',
      '1',
      // The live stream never ends: a client reads its events until this timeout.
      '--request-timeout',
      '3',
      '--no-color',
    ]
    const { code, output } = await new Promise<{ code: number | null; output: string }>((resolve) => {
      // Run elsewhere: schemathesis keeps a folder of its own in its working directory.
      const child = spawn(st, args, { cwd: mkdtempSync(join(tmpdir(), 'evf-schemathesis-')) })
      let output = ''
      child.stdout.on('data', (d: Buffer) => (output += d))
      child.stderr.on('data', (d: Buffer) => (output += d))
      child.on('error', (e) => resolve({ code: -1, output: `cannot run ${st}: ${e.message}` }))
      child.on('exit', (c) => resolve({ code: c, output }))
    })
    assert.equal(code, 0, `schemathesis found failures:\n${output}`)
    // Every operation of the document was exercised, none skipped.
    const spec = (await (await fetch(`${base}/docs/json`)).json()) as { paths: Record<string, object> }
    const operations = Object.values(spec.paths).reduce((n, methods) => n + Object.keys(methods).length, 0)
    assert.match(output, new RegExp(`Tested: ${operations}\\b`), output)
    const generated = /(\d+) generated/.exec(output)?.[1]
    assert.ok(Number(generated) >= operations * 20, `only ${generated} test cases:\n${output}`)
    t.diagnostic(`schemathesis: ${operations} operations, ${generated} test cases, all checks passed`)
  })
})
