// compose's one-shot `kafka-init` service: Kafka's users, ACLs and topics, as `evf stack up` makes
// them for its embedded broker (docs/security.md, "Kafka"; docs/deploy.md, "Kafka's security").
// Idempotent, run at every `up`; exits 0 when done.
//
//   1. The SCRAM-SHA-512 credentials of admin, etl and simulator, with the passwords from .env, set
//      through the KRaft listener (EVF_KAFKA_CONTROLLER) as `controller`, whose only account is
//      the broker's JAAS line: the broker takes no login before its users exist. Set again at every
//      run, so a password changed in .env is a rotation (setScramCredentials, as `stack up` sets its
//      users). The salted passwords are computed here:
//      no password is on a command line or in a log.
//   2. Logged in as admin (KAFKA_BROKERS): the components' ACLs (grantComponentAcls) and the
//      station topics (ensureTopics), with the project's own code from dist/, for the same
//      settings as the other services (EVF_TOPIC_PREFIX, EVF_TOPIC_PARTITIONS, EVF_ETL_GROUP_ID).
//
// It waits for the broker (up to EVF_KAFKA_INIT_WAIT_SEC, 180 s): compose starts it with Kafka,
// whose health check needs the users this makes. Exit codes are the CLI's (README, "Exit codes").
import { allTopics } from '../dist/catalog/index.js'
import { loadConfig } from '../dist/config/index.js'
import { classify, kafkaRefusal, PipelineError } from '../dist/errors/index.js'
import {
  createAdmin,
  ensureTopics,
  grantComponentAcls,
  KAFKA_USERS,
  scramLogin,
  setScramCredentials,
} from '../dist/kafka/index.js'
import { createLogger } from '../dist/shared/log.js'

const say = (line) => process.stdout.write(`kafka-init: ${line}\n`)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** A password from the environment: required, and usable in a JAAS line (no `"`, `\`, blanks). */
function password(name) {
  const value = process.env[name] ?? ''
  if (!value) throw new PipelineError('CONFIG_INVALID', `${name} is empty: set it in .env (see .env.example)`)
  if (/["\\\s]/.test(value)) {
    throw new PipelineError(
      'CONFIG_INVALID',
      `${name} contains a quote, a backslash or a blank, which the broker's JAAS lines cannot hold: use letters, digits, "-", "_", "." and "~"`,
    )
  }
  return value
}

/**
 * Retries `work` until it succeeds or `deadline`. A refused login or operation is given up after
 * `refusalTries` (a broker just started may refuse a login its metadata does not have yet).
 */
async function retrying(what, deadline, work, { refusalTries = 10 } = {}) {
  let refusals = 0
  for (let attempt = 1; ; attempt++) {
    try {
      return await work()
    } catch (error) {
      if (kafkaRefusal(error)) refusals++
      if (refusals >= refusalTries || Date.now() > deadline) throw error
      if (attempt === 1 || attempt % 10 === 0) say(`waiting for ${what}: ${error.message ?? error}`)
      await sleep(1000)
    }
  }
}

async function main() {
  const config = loadConfig()
  const log = createLogger('kafka-init', config.logLevel)
  const controller = process.env.EVF_KAFKA_CONTROLLER || 'kafka:9093'
  const waitSec = Number(process.env.EVF_KAFKA_INIT_WAIT_SEC || 180)
  if (!config.kafkaBrokers) throw new PipelineError('CONFIG_INVALID', 'KAFKA_BROKERS is not set')
  const controllerPassword = password('EVF_KAFKA_CONTROLLER_PASSWORD')
  const passwords = Object.fromEntries(
    KAFKA_USERS.map((user) => [user, password(`EVF_KAFKA_${user.toUpperCase()}_PASSWORD`)]),
  )
  const deadline = Date.now() + waitSec * 1000

  await retrying(`the KRaft controller at ${controller}`, deadline, () =>
    setScramCredentials(controller, controllerPassword, passwords),
  ).catch((error) => {
    throw kafkaRefusal(error)
      ? new PipelineError(
          'KAFKA_AUTH',
          `the KRaft listener ${controller} refused user "controller" (${kafkaRefusal(error)}): EVF_KAFKA_CONTROLLER_PASSWORD must be the one the kafka container started with (recreate it after a change: \`docker compose up -d\`)`,
          { cause: error },
        )
      : error
  })
  say(`SCRAM-SHA-512 credentials of ${KAFKA_USERS.join(', ')} set`)

  // The new credentials reach the broker through the metadata log: a first login may be early.
  const admin = createAdmin(scramLogin(config.kafkaBrokers, 'admin', passwords.admin), 'evf-kafka-init')
  try {
    await retrying(`the broker at ${config.kafkaBrokers} to take admin's login`, deadline, async () => {
      await grantComponentAcls(admin, config)
      await ensureTopics(admin, allTopics(config.topicPrefix), config.topicPartitions, log, 'admin')
    })
  } finally {
    await admin.close().catch(() => undefined)
  }
  say(
    `ACLs of simulator and etl on topics "${config.topicPrefix || '*'}" and groups "${config.etlGroupId}" (prefixed); topics ${allTopics(config.topicPrefix).join(', ')} exist`,
  )
}

try {
  await main()
} catch (error) {
  const e = classify(error, 'admin')
  process.stderr.write(`kafka-init: ${e.code}: ${e.message}\n`)
  process.exitCode = e.exitCode
}
