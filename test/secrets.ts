/**
 * The secret scan of `npm test` (issue: secrets stay secret). Tests and services note every secret
 * they generate with `rememberSecret`; after the run, test/run.ts looks for each in the run's whole
 * output and in every log file under the test stack's data directory.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join, relative } from 'node:path'
import { repoRoot } from '../src/shared/paths.ts'

const testStack = join(repoRoot, '.test-stack')
const file = (dir: string) => join(dir, 'secrets.txt')

/** Notes a secret the scan must not find anywhere. */
export function rememberSecret(secret: string, dir = testStack): void {
  mkdirSync(dir, { recursive: true })
  appendFileSync(file(dir), `${secret}\n`, { mode: 0o600 })
}

export function secretsOf(dir: string): string[] {
  if (!existsSync(file(dir))) return []
  // Short values would match by chance; every generated secret is longer.
  return [...new Set(readFileSync(file(dir), 'utf8').split('\n'))].filter((s) => s.length >= 16)
}

function logFiles(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name)
    if (e.isDirectory()) return logFiles(path)
    return /\.(log|out|err)$/.test(e.name) || e.name === 'stdout.log' ? [path] : []
  })
}

/** Where each secret was found (the secret itself masked), or nothing. */
export function scanForSecrets(dir: string, output: string): string[] {
  const secrets = secretsOf(dir)
  const sources: [string, string][] = [['the test output', output]]
  for (const f of logFiles(dir))
    if (statSync(f).size < 512 * 1024 * 1024) sources.push([relative(repoRoot, f), readFileSync(f, 'utf8')])
  const leaks: string[] = []
  for (const secret of secrets)
    for (const [where, text] of sources)
      if (text.includes(secret)) leaks.push(`${secret.slice(0, 4)}… (${secret.length} chars) in ${where}`)
  return leaks
}
