// compose.yaml driven by docker-compose 1.29 through podman's Docker-compatible socket, as a user
// would drive it with `docker compose`; plus what the checks need to look inside (podman).
import { createWriteStream } from 'node:fs'
import { join } from 'node:path'
import { root } from './images.mjs'
import { run, sh } from './lib.mjs'

export class Compose {
  /**
   * @param {{project: string, envFile: string, dockerHost: string, logFile: string}} o
   */
  constructor({ project, envFile, dockerHost, logFile }) {
    this.project = project
    this.envFile = envFile
    this.env = { DOCKER_HOST: dockerHost, COMPOSE_HTTP_TIMEOUT: '300' }
    this.log = createWriteStream(logFile, { flags: 'a' })
    this.profiles = [] // `--profile` of every command but down
  }

  /** `docker-compose <args>` for this project; output to the log file, errors with its tail. */
  async compose(...args) {
    const global = ['--env-file', this.envFile, '-p', this.project, '-f', join(root, 'compose.yaml')]
    const profiles = this.profiles.flatMap((p) => ['--profile', p])
    this.log.write(`\n$ docker-compose ${args.join(' ')}\n`)
    return (await run('docker-compose', [...global, ...profiles, ...args], { env: this.env, log: this.log }))
      .output
  }

  /** `down` of every service, the profile airflow's too, whatever ran. */
  down(...extra) {
    return this.compose('--profile', 'airflow', 'down', '--remove-orphans', ...extra)
  }

  up(...extra) {
    return this.compose('up', '-d', '--no-build', ...extra)
  }

  /** Ids of the project's containers, of one service if given (running ones unless `all`). */
  containers(service, { all = false } = {}) {
    const filters = [`label=com.docker.compose.project=${this.project}`]
    if (service) filters.push(`label=com.docker.compose.service=${service}`)
    const args = ['ps', '-q', ...(all ? ['-a'] : []), ...filters.flatMap((f) => ['--filter', f])]
    return sh('podman', args).split('\n').filter(Boolean)
  }

  /** The health status of a service's (first) container: starting, healthy, unhealthy. */
  health(service) {
    const [id] = this.containers(service)
    return id ? sh('podman', ['inspect', '--format', '{{.State.Health.Status}}', id]).trim() : undefined
  }

  /** Host addresses the project's running containers publish ports on ("127.0.0.1:8000"). */
  publishedAddresses() {
    return this.containers().flatMap((id) =>
      sh('podman', ['port', id])
        .split('\n')
        .map((line) => line.split(' -> ')[1]?.trim())
        .filter(Boolean),
    )
  }

  /** Runs a command in the (first) container of a service. */
  exec(service, ...command) {
    const [id] = this.containers(service)
    if (!id) throw new Error(`no running ${service} container`)
    return sh('podman', ['exec', id, ...command])
  }

  /** One SQL query as the owner, through psql in the postgres container; rows of `|`-separated values. */
  sql(query) {
    return this.exec('postgres', 'psql', '-U', 'evf', '-d', 'evf', '-v', 'ON_ERROR_STOP=1', '-Atc', query)
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('|'))
  }

  /** The project's volumes and networks still present (by label and by name). */
  leftovers() {
    const label = `label=com.docker.compose.project=${this.project}`
    const mine = (line) =>
      line && (line.startsWith(`${this.project}_`) || line.startsWith(`${this.project}-`))
    const names = (kind) => [
      ...sh('podman', [kind, 'ls', '--filter', label, '--format', '{{.Name}}']).split('\n'),
      ...sh('podman', [kind, 'ls', '--format', '{{.Name}}']).split('\n').filter(mine),
    ]
    return {
      containers: this.containers(undefined, { all: true }),
      volumes: [...new Set(names('volume').filter(Boolean))],
      networks: [...new Set(names('network').filter(Boolean))],
    }
  }

  close() {
    this.log.end()
  }
}
