/**
 * The HTTP servers benchmarks measure: our API as production runs it (`node dist/cli.js api`),
 * and the FastAPI baseline (bench/baselines/fastapi) installed into .cache/bench-api/venv. Both
 * are stopped by cleanup; each writes its log to `<logDir>/<name>.log`.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { issueToken } from '../../src/api/index.ts'
import { loadConfig } from '../../src/config/index.ts'
import { createPool } from '../../src/db/index.ts'
import { freePort } from '../../src/services/index.ts'
import { repoRoot } from '../../src/shared/paths.ts'
import { heapFlags, SEMI_SPACE_MB } from '../../src/shared/supervisor.ts'
import { cleanupNow, distCli, startChild, waitHealthy } from './processes.ts'
import { progress, seconds } from './report.ts'

const venv = join(repoRoot, '.cache', 'bench-api', 'venv')
const baselineDir = join(repoRoot, 'bench', 'baselines', 'fastapi')

export interface Server {
  base: string
  /** what every request sends (our API: its bearer token) */
  headers?: Record<string, string>
  pid: number
  /** stops it now (cleanup would, at the end) */
  stop: () => Promise<void>
}

/** Our API from dist/, on a free loopback port; `name` names its log file. */
export async function startOurApi(opts: {
  databaseUrl: string
  logDir: string
  env?: Record<string, string>
  name?: string
}): Promise<Server> {
  const { databaseUrl, env: extraEnv = {}, name = 'api' } = opts
  const port = await freePort()
  // As `stack up` starts it: with the V8 flags of its settings.
  const heap = heapFlags(loadConfig({}, {}).apiHeapMb, SEMI_SPACE_MB)
  const { child, logFile, stop } = startChild(name, process.execPath, [...heap, distCli, 'api'], {
    logFile: join(opts.logDir, `${name}.log`),
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      EVF_API_HOST: '127.0.0.1',
      EVF_API_PORT: String(port),
      EVF_LOG_LEVEL: 'warn',
      // The limiter stays in the path (its cost is part of production), but one load generator
      // at one address is not a crowd of clients: a limit it never reaches.
      EVF_API_RATE_LIMIT: '1000000000',
      // exits if we are killed without cleaning up
      EVF_SUPERVISED: '1',
      ...extraEnv,
    },
  })
  const base = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  await waitHealthy('our API', `${base}/health`, child, logFile)
  progress(`our API (node dist/cli.js api, pid ${child.pid}) answers /health after ${seconds(t0)}`)
  // Authentication stays on, as in production: every request carries a token and is checked.
  const pool = createPool(databaseUrl, { max: 1 })
  const { token } = await issueToken(pool, 'api', `bench-${name}-${port}`, ['read', 'export', 'metrics'])
  await pool.end()
  const headers = { authorization: `Bearer ${token}` }
  return { base, headers, pid: child.pid!, stop: () => cleanupNow(stop) }
}

/** The baseline's venv, (re)installed when its lock file or the Python version changed. */
export function installBaseline(): void {
  const lock = readFileSync(join(baselineDir, 'requirements.txt'))
  const python = execFileSync('python3', ['--version'], { encoding: 'utf8' }).trim()
  const want = createHash('sha256').update(lock).update(python).digest('hex')
  const stamp = join(venv, '.bench-stamp')
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === want) {
    progress(`FastAPI baseline: venv up to date (${venv})`)
    return
  }
  const t0 = performance.now()
  progress(`FastAPI baseline: installing bench/baselines/fastapi/requirements.txt into ${venv} (${python})…`)
  rmSync(venv, { recursive: true, force: true })
  execFileSync('python3', ['-m', 'venv', venv], { stdio: ['ignore', 2, 2] })
  execFileSync(
    join(venv, 'bin', 'pip'),
    ['install', '--disable-pip-version-check', '--no-input', '-r', join(baselineDir, 'requirements.txt')],
    { stdio: ['ignore', 2, 2] },
  )
  writeFileSync(stamp, want)
  progress(`FastAPI baseline installed in ${seconds(t0)}`)
}

/** The baseline under uvicorn, one worker, on a free loopback port. */
export async function startBaseline(databaseUrl: string, logDir: string): Promise<Server> {
  const port = await freePort()
  const { child, logFile, stop } = startChild(
    'fastapi',
    join(venv, 'bin', 'uvicorn'),
    [
      'app:app',
      '--host',
      '127.0.0.1',
      '--port',
      String(port),
      '--workers',
      '1',
      '--no-access-log',
      '--log-level',
      'warning',
    ],
    {
      cwd: baselineDir,
      env: { ...process.env, DATABASE_URL: databaseUrl },
      logFile: join(logDir, 'fastapi.log'),
    },
  )
  const base = `http://127.0.0.1:${port}`
  const t0 = performance.now()
  await waitHealthy('FastAPI baseline', `${base}/health`, child, logFile)
  progress(`FastAPI baseline (uvicorn, 1 worker, pid ${child.pid}) answers /health after ${seconds(t0)}`)
  return { base, pid: child.pid!, stop: () => cleanupNow(stop) }
}
