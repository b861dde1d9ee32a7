#!/usr/bin/env node
// Provisions a Python venv the project uses, from a committed lock:
//   airflow        .cache/airflow/venv       ←  airflow/requirements.txt + airflow/constraints.txt
//   schemathesis   .cache/schemathesis/venv  ←  test/contract/requirements.txt + constraints.txt
//   producers      .cache/producers/venv     ←  test/producers/requirements.txt + constraints.txt
// Idempotent: a stamp file holds the sha256 of the requirements, the constraints and the Python
// version; when it matches, nothing is done. Plain Node ESM, no npm dependencies.
//
//   node scripts/venv-setup.mjs NAME            install or verify
//   node scripts/venv-setup.mjs NAME --force    rebuild the venv from scratch
//
// Env: EVF_PYTHON (default python3) picks the interpreter the venv is made from.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

/** What each venv holds: its lock's folder and the module whose import proves it works. */
const VENVS = {
  airflow: { lock: 'airflow', module: 'airflow', what: 'Apache Airflow' },
  schemathesis: { lock: 'test/contract', module: 'schemathesis', what: 'schemathesis' },
  producers: { lock: 'test/producers', module: 'confluent_kafka', what: 'confluent-kafka (librdkafka)' },
}
const name = process.argv[2]
const venvSpec = VENVS[name]
if (!venvSpec) {
  console.error(`usage: venv-setup.mjs ${Object.keys(VENVS).join('|')} [--force]`)
  process.exit(2)
}

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const requirements = join(root, venvSpec.lock, 'requirements.txt')
const constraints = join(root, venvSpec.lock, 'constraints.txt')
const venv = join(root, '.cache', name, 'venv')
const stamp = join(venv, `.evf-${name}-stamp`)
const venvPython = join(venv, 'bin', 'python')
const python = process.env.EVF_PYTHON || 'python3'
const force = process.argv.includes('--force')
const started = Date.now()

const log = (msg) => console.log(`[${name}-venv] ${msg}`)
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`

function fail(msg) {
  console.error(`[${name}-venv] ERROR: ${msg}`)
  process.exit(1)
}

/** Runs a command with inherited stdio (pip's progress shows); fails the script on a non-zero exit. */
function run(cmd, args, what) {
  const res = spawnSync(cmd, args, { stdio: 'inherit', cwd: root })
  if (res.error) fail(`${what}: ${res.error.message}`)
  if (res.status !== 0) fail(`${what} failed (exit ${res.status ?? res.signal})`)
}

/** Runs a command quietly; returns its trimmed stdout, or undefined when it could not run or failed. */
function probe(cmd, args) {
  const res = spawnSync(cmd, args, { encoding: 'utf8' })
  return res.status === 0 ? res.stdout.trim() : undefined
}

for (const f of [requirements, constraints]) {
  if (!existsSync(f)) fail(`missing ${relative(root, f)}`)
}

// Prerequisites: a Python 3 interpreter, and its venv module with ensurepip (Debian splits them
// into python3-venv; without ensurepip `python3 -m venv` leaves a venv without pip).
const version = probe(python, ['-c', 'import sys; print("%d.%d.%d" % sys.version_info[:3])'])
if (!version) fail(`${python} not found: install Python 3 (Debian: apt-get install python3 python3-venv)`)
const [major, minor] = version.split('.').map(Number)
if (major !== 3 || minor < 10) fail(`${python} is Python ${version}; ${venvSpec.what} needs Python ≥ 3.10`)
if (probe(python, ['-c', 'import venv, ensurepip']) === undefined) {
  fail(
    `${python} (${version}) has no venv/ensurepip module: install it (Debian: apt-get install python3-venv)`,
  )
}

const hash = createHash('sha256')
hash.update(readFileSync(requirements))
hash.update('\0')
hash.update(readFileSync(constraints))
hash.update(`\0python ${version}`)
const digest = hash.digest('hex')

const current = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : ''
if (!force && current === digest && existsSync(venvPython)) {
  log(`venv up to date (${relative(root, venv)}, python ${version}); ${elapsed()}`)
  process.exit(0)
}

if (force || existsSync(venv)) {
  // A stale venv may hold packages the new lock no longer lists: rebuild from scratch.
  log(`${force ? 'rebuilding' : 'lock changed: rebuilding'} ${relative(root, venv)}`)
  rmSync(venv, { recursive: true, force: true })
}
mkdirSync(dirname(venv), { recursive: true })

log(`creating venv with ${python} ${version}`)
run(python, ['-m', 'venv', venv], 'python -m venv')

log('upgrading pip in the venv')
run(
  venvPython,
  ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--upgrade', 'pip'],
  'pip upgrade',
)

log(`installing ${relative(root, requirements)} with ${relative(root, constraints)} (this takes a minute)`)
run(
  venvPython,
  [
    '-m',
    'pip',
    'install',
    '--quiet',
    '--disable-pip-version-check',
    '--no-input',
    '-r',
    requirements,
    '-c',
    constraints,
  ],
  'pip install',
)

log('pip check')
run(venvPython, ['-m', 'pip', 'check', '--disable-pip-version-check'], 'pip check')

const installed = probe(venvPython, [
  '-c',
  `import ${venvSpec.module} as m; print(getattr(m, '__version__', '(version unknown)'))`,
])
if (!installed) fail(`${venvSpec.module} does not import from the new venv`)

writeFileSync(stamp, `${digest}\n`)
log(`installed ${venvSpec.what} ${installed} in ${relative(root, venv)}; took ${elapsed()}`)
