// The host side of the containers test: podman and compose from Debian, podman's configuration,
// its Docker-compatible socket for docker-compose, and the loop that runs the health checks.
// What each piece is for: ../../../shared/CONTAINERS.md (and docs/deploy.md).
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { join } from 'node:path'
import { run, say, sh, waitFor } from './lib.mjs'

const PACKAGES = [
  'podman',
  'fuse-overlayfs',
  'slirp4netns',
  'uidmap',
  'runc',
  'crun',
  'catatonit',
  'golang-github-containernetworking-plugin-dnsname',
  'mmdebstrap',
  'kcat',
]
// docker-compose 1.29 talks to podman's Docker-compatible socket; without recommends it brings
// no Docker engine along.
const COMPOSE_PACKAGES = ['docker-compose']

const installed = (pkg) =>
  sh('dpkg', ['-s', pkg], { allowFail: true }).stdout.includes('Status: install ok installed')

/** Installs what is missing with apt-get; returns whether anything was installed. */
export function ensurePackages() {
  const missing = PACKAGES.filter((p) => !installed(p))
  const missingCompose = COMPOSE_PACKAGES.filter((p) => !installed(p))
  if (missing.length === 0 && missingCompose.length === 0) return false
  if (process.getuid?.() !== 0) throw new Error(`run as root to install ${[...missing, ...missingCompose]}`)
  const env = { DEBIAN_FRONTEND: 'noninteractive' }
  say(`installing ${[...missing, ...missingCompose].join(' ')} (apt-get)…`)
  sh('apt-get', ['update', '-qq'], { env })
  if (missing.length) sh('apt-get', ['install', '-y', '-qq', ...missing], { env })
  if (missingCompose.length) {
    sh('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missingCompose], { env })
  }
  return true
}

const CONTAINERS_CONF = '/etc/containers/containers.conf'
// Without it every `podman run` fails here: the default ulimits cannot be raised, and crun
// refuses the hybrid cgroups (CONTAINERS.md, point 2).
const CONTAINERS_CONF_TEXT = `# Written by scripts/containers/test.mjs (see docs/deploy.md)
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
`

/** Writes podman's configuration when there is none; leaves a configuration of someone else's alone. */
export function ensureContainersConf() {
  if (existsSync(CONTAINERS_CONF)) {
    const text = readFileSync(CONTAINERS_CONF, 'utf8')
    if (!/runtime\s*=\s*"runc"/.test(text) || !/default_ulimits/.test(text)) {
      say(`note: ${CONTAINERS_CONF} exists without runc/default_ulimits; containers may fail to start`)
    }
    return false
  }
  mkdirSync('/etc/containers', { recursive: true })
  writeFileSync(CONTAINERS_CONF, CONTAINERS_CONF_TEXT)
  return true
}

function ping(socketPath) {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: '/_ping', timeout: 2000 }, (res) => {
      res.resume()
      resolve(res.statusCode === 200)
    })
    req.on('error', () => resolve(false))
    req.end()
  })
}

/**
 * `podman system service` on a socket of our own, for docker-compose (DOCKER_HOST). Returns the
 * DOCKER_HOST value and a stop function; the service's log goes to `<workDir>/podman-service.log`.
 */
export async function startPodmanService(workDir) {
  const socket = join(workDir, 'podman.sock')
  rmSync(socket, { force: true })
  const logFd = openSync(join(workDir, 'podman-service.log'), 'a')
  const child = spawn('podman', ['system', 'service', '--time=0', `unix://${socket}`], {
    stdio: ['ignore', logFd, logFd],
  })
  await waitFor('podman’s socket', 30_000, () => ping(socket), 250)
  const exited = new Promise((resolve) => child.once('exit', resolve))
  return {
    dockerHost: `unix://${socket}`,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM')
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))])
      rmSync(socket, { force: true })
    },
  }
}

/**
 * Podman schedules health checks with systemd timers, and there is no systemd here: nothing would
 * ever run them, and `depends_on: condition: service_healthy` would wait forever (CONTAINERS.md,
 * point 6). This loop does the scheduler's job for the project's containers: a container not
 * healthy yet is checked every `startingMs` (so its `retries` last `retries` × that after its
 * start period), a healthy one every `recheckMs`.
 */
export function startHealthLoop(project, { everyMs = 1000, startingMs = 5000, recheckMs = 30_000 } = {}) {
  const lastRun = new Map()
  let stopped = false
  const round = async () => {
    const { output } = await run(
      'podman',
      ['ps', '--filter', `label=com.docker.compose.project=${project}`, '--format', '{{.ID}} {{.Status}}'],
      { allowFail: true },
    )
    for (const line of output.split('\n')) {
      const [id, ...status] = line.trim().split(' ')
      const health = /\((healthy|unhealthy|starting)\)/.exec(status.join(' '))?.[1]
      if (!id || !health) continue // no health check (or disabled)
      const gap = health === 'healthy' ? recheckMs : startingMs
      if (Date.now() - (lastRun.get(id) ?? 0) < gap) continue
      lastRun.set(id, Date.now())
      await run('podman', ['healthcheck', 'run', id], { allowFail: true })
    }
  }
  const done = (async () => {
    while (!stopped) {
      await round().catch(() => undefined)
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    stop: async () => {
      stopped = true
      await done
    },
  }
}
