#!/usr/bin/env node
// Provisions the Apache Airflow 3 venv used to orchestrate the pipeline:
//   .cache/airflow/venv  ←  pip install -r airflow/requirements.txt -c airflow/constraints.txt
// Idempotent: a stamp file holds the sha256 of requirements.txt + constraints.txt (and the Python
// version); when it matches, nothing is done. Plain Node ESM, no npm dependencies.
//
//   node scripts/airflow-setup.mjs            install or verify
//   node scripts/airflow-setup.mjs --force    rebuild the venv from scratch
//
// Env: EVF_PYTHON (default python3) picks the interpreter the venv is made from.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const requirements = join(root, 'airflow', 'requirements.txt')
const constraints = join(root, 'airflow', 'constraints.txt')
const venv = join(root, '.cache', 'airflow', 'venv')
const stamp = join(venv, '.evf-airflow-stamp')
const venvPython = join(venv, 'bin', 'python')
const python = process.env.EVF_PYTHON || 'python3'
const force = process.argv.includes('--force')
const started = Date.now()

const log = (msg) => console.log(`[airflow-setup] ${msg}`)
const elapsed = () => `${((Date.now() - started) / 1000).toFixed(1)}s`

function fail(msg) {
  console.error(`[airflow-setup] ERROR: ${msg}`)
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
if (major !== 3 || minor < 10) fail(`${python} is Python ${version}; Airflow 3 needs Python ≥ 3.10`)
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

log('installing airflow/requirements.txt with airflow/constraints.txt (this takes a minute)')
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

const airflowVersion = probe(venvPython, ['-c', 'import airflow; print(airflow.__version__)'])
if (!airflowVersion) fail('airflow does not import from the new venv')

writeFileSync(stamp, `${digest}\n`)
log(`installed Apache Airflow ${airflowVersion} in ${relative(root, venv)}; took ${elapsed()}`)
