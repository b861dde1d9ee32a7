// The images of the containers test. No registry is reachable here, so the official images that
// compose.yaml names by default are replaced by local stand-ins with the same interface, built on a
// Debian bookworm base made with mmdebstrap from the Debian mirror (containers/standins/).
import { createHash } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { say, sh } from './lib.mjs'

export const root = new URL('../../', import.meta.url).pathname

const pinned = (file, pattern) => pattern.exec(readFileSync(join(root, file), 'utf8'))[1]
export const kafkaVersion = () => pinned('kafka/pom.xml', /<kafka\.version>([^<]+)<\/kafka\.version>/)
const airflowVersion = () => pinned('airflow/requirements.txt', /^apache-airflow==(\S+)/m)

export const IMAGES = {
  base: 'localhost/debian:bookworm',
  node: 'localhost/evf-standin/node:26',
  kafka: `localhost/evf-standin/kafka:${kafkaVersion()}`,
  postgres: 'localhost/evf-standin/postgres:15',
  airflowBase: `localhost/evf-standin/airflow:${airflowVersion()}`,
  app: 'localhost/evf:containers-test',
  airflow: 'localhost/evf-airflow:containers-test',
}

const imageExists = (name) => sh('podman', ['image', 'exists', name], { allowFail: true }).code === 0

/**
 * `deb` lines of the host's Debian bookworm sources (one-line and deb822 formats), so the base
 * image uses the same mirror as apt-get here; deb.debian.org when none is found.
 */
export function debianSources() {
  const lines = []
  const files = ['/etc/apt/sources.list']
  if (existsSync('/etc/apt/sources.list.d')) {
    files.push(...readdirSync('/etc/apt/sources.list.d').map((f) => join('/etc/apt/sources.list.d', f)))
  }
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, 'utf8')
    for (const m of text.matchAll(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(bookworm\S*)\s+(.+)$/gm)) {
      lines.push(`deb ${m[1]} ${m[2]} main`)
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name) => new RegExp(`^${name}:\\s*(.+)$`, 'mi').exec(stanza)?.[1].trim()
      if (!/^Types:.*\bdeb\b/im.test(stanza)) continue
      for (const uri of (field('URIs') ?? '').split(/\s+/).filter(Boolean)) {
        for (const suite of (field('Suites') ?? '').split(/\s+/).filter((s) => s.startsWith('bookworm'))) {
          lines.push(`deb ${uri} ${suite} main`)
        }
      }
    }
  }
  const debian = [...new Set(lines)].filter((l) => /\/debian(-security)?\/? /.test(l))
  return debian.length
    ? debian
    : [
        'deb http://deb.debian.org/debian bookworm main',
        'deb http://deb.debian.org/debian bookworm-updates main',
        'deb http://deb.debian.org/debian-security bookworm-security main',
      ]
}

const LOCAL_CAS = '/usr/local/share/ca-certificates'

/**
 * This machine reaches the registries through a TLS-inspecting egress whose CA the host trusts
 * (LOCAL_CAS): the base image trusts the same CAs, or pip and npm fail in the builds.
 */
function localCaHooks() {
  if (!existsSync(LOCAL_CAS) || !readdirSync(LOCAL_CAS).some((f) => f.endsWith('.crt'))) return []
  return [
    `--customize-hook=copy-in ${LOCAL_CAS} /usr/local/share`,
    '--customize-hook=chroot "$1" update-ca-certificates',
  ]
}

/** The Debian bookworm base, from the Debian mirror (mmdebstrap); kept once made. */
export function ensureBaseImage(workDir) {
  if (imageExists(IMAGES.base)) return false
  const tar = join(workDir, 'bookworm-rootfs.tar')
  say('building the Debian bookworm root file system (mmdebstrap, about a minute)…')
  sh(
    'mmdebstrap',
    [
      '--quiet',
      '--variant=minbase',
      '--include=ca-certificates,passwd',
      '--aptopt=Acquire::Check-Valid-Until "false"',
      ...localCaHooks(),
      'bookworm',
      tar,
      ...debianSources(),
    ],
    { inherit: true },
  )
  sh('podman', ['import', '--change', 'CMD ["/bin/bash"]', tar, IMAGES.base])
  rmSync(tar, { force: true })
  return true
}

/** `podman build` in Docker's format: the OCI format drops HEALTHCHECK (CONTAINERS.md, point 4). */
export function build(tag, { file, context, args = {} }) {
  const buildArgs = Object.entries(args).flatMap(([k, v]) => ['--build-arg', `${k}=${v}`])
  sh('podman', ['build', '--format', 'docker', '-t', tag, '-f', file, ...buildArgs, context])
  return tag
}

const standin = (name) => join(root, 'containers/standins', name)
const fresh = (dir) => {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  return dir
}

/** kafka/pom.xml's jars: the setup's copy in .cache/kafka/libs, else Maven into our work dir. */
function kafkaLibs(workDir) {
  const shared = join(root, '.cache/kafka/libs')
  if (existsSync(shared) && readdirSync(shared).some((f) => f.startsWith('kafka_'))) return shared
  const own = fresh(join(workDir, 'kafka-libs'))
  say('fetching the Kafka jars of kafka/pom.xml (mvn dependency:copy-dependencies)…')
  sh('mvn', [
    '-B',
    '--no-transfer-progress',
    '-f',
    join(root, 'kafka/pom.xml'),
    'dependency:copy-dependencies',
    '-DincludeScope=runtime',
    `-DoutputDirectory=${own}`,
  ])
  return own
}

/**
 * kafka-tools, which the broker's pom leaves out: the official image's health-check and
 * consumer-group tools live there. From Maven Central, checked against its published SHA-1.
 */
async function kafkaToolsJar(workDir) {
  const version = kafkaVersion()
  const file = join(workDir, `kafka-tools-${version}.jar`)
  const url = `https://repo1.maven.org/maven2/org/apache/kafka/kafka-tools/${version}/kafka-tools-${version}.jar`
  if (!existsSync(file)) {
    const [jar, sha1] = await Promise.all([fetch(url), fetch(`${url}.sha1`)])
    if (!jar.ok || !sha1.ok) throw new Error(`cannot download ${url}: ${jar.status}/${sha1.status}`)
    const bytes = Buffer.from(await jar.arrayBuffer())
    const want = (await sha1.text()).trim().split(/\s/)[0]
    const got = createHash('sha1').update(bytes).digest('hex')
    if (got !== want) throw new Error(`${url}: SHA-1 ${got}, Maven Central says ${want}`)
    writeFileSync(file, bytes)
  }
  return file
}

export async function buildKafkaStandin(workDir) {
  const context = fresh(join(workDir, 'kafka-context'))
  cpSync(standin('kafka'), context, { recursive: true })
  cpSync(kafkaLibs(workDir), join(context, 'libs'), { recursive: true })
  cpSync(await kafkaToolsJar(workDir), join(context, 'libs', `kafka-tools-${kafkaVersion()}.jar`))
  return build(IMAGES.kafka, {
    file: join(context, 'Dockerfile'),
    context,
    args: { BASE_IMAGE: IMAGES.base },
  })
}

export const buildPostgresStandin = () =>
  build(IMAGES.postgres, {
    file: join(standin('postgres'), 'Dockerfile'),
    context: standin('postgres'),
    args: { BASE_IMAGE: IMAGES.base },
  })

export const buildNodeStandin = () =>
  build(IMAGES.node, {
    file: join(standin('node'), 'Dockerfile'),
    context: standin('node'),
    args: { BASE_IMAGE: IMAGES.base },
  })

export function buildAirflowStandin(workDir) {
  const context = fresh(join(workDir, 'airflow-context'))
  cpSync(standin('airflow'), context, { recursive: true })
  for (const f of ['requirements.txt', 'constraints.txt']) cpSync(join(root, 'airflow', f), join(context, f))
  return build(IMAGES.airflowBase, {
    file: join(context, 'Dockerfile'),
    context,
    args: { BASE_IMAGE: IMAGES.base },
  })
}

/** The application image from the repository's Dockerfile, on the Node stand-in. */
export const buildAppImage = () =>
  build(IMAGES.app, { file: join(root, 'Dockerfile'), context: root, args: { NODE_IMAGE: IMAGES.node } })

/** The profile airflow's image from containers/airflow/Dockerfile, on the two images above. */
export const buildAirflowImage = () =>
  build(IMAGES.airflow, {
    file: join(root, 'containers/airflow/Dockerfile'),
    context: root,
    args: { AIRFLOW_IMAGE: IMAGES.airflowBase, EVF_IMAGE: IMAGES.app },
  })

/** `podman images` lines for the images above: repository, tag, size. */
export function imageSizes() {
  return sh('podman', ['images', '--format', '{{.Repository}}:{{.Tag}}  {{.Size}}'])
    .split('\n')
    .filter((l) => Object.values(IMAGES).some((name) => l.startsWith(`${name}  `)))
}
