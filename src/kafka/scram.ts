import { pbkdf2Sync, randomBytes } from 'node:crypto'
import { alterUserScramCredentialsV0, Connection, ScramMechanisms } from '@platformatic/kafka'
import { KAFKA_USERS, type KafkaUser } from './credentials.ts'

/**
 * Sets (or replaces) the SCRAM-SHA-512 credentials of `KAFKA_USERS` with `passwords`, once,
 * through the KRaft controller listener at `controller` (`host:port`) as the user `controller`.
 * The salted passwords are computed here: no password crosses a command line. Used by
 * the embedded broker's start (services/) and by the containers' `kafka-init`.
 */
export async function setScramCredentials(
  controller: string,
  controllerPassword: string,
  passwords: Readonly<Record<KafkaUser, string>>,
): Promise<void> {
  const upsertions = KAFKA_USERS.map((name) => {
    const salt = randomBytes(32)
    const saltedPassword = pbkdf2Sync(passwords[name], salt, SCRAM_ITERATIONS, 64, 'sha512')
    return {
      name,
      mechanism: ScramMechanisms.SCRAM_SHA_512,
      iterations: SCRAM_ITERATIONS,
      salt,
      saltedPassword,
    }
  })
  const split = controller.lastIndexOf(':')
  const conn = new Connection('evf-provision-users', {
    sasl: { mechanism: 'PLAIN', username: 'controller', password: controllerPassword },
  })
  try {
    await conn.connect(controller.slice(0, split), Number(controller.slice(split + 1)))
    const { results } = await alterUserScramCredentialsV0.api.async(conn, [], upsertions)
    const failed = results.filter((r) => r.errorCode !== 0)
    if (failed.length > 0)
      throw new Error(failed.map((r) => `${r.user}: ${r.errorMessage ?? r.errorCode}`).join('; '))
  } finally {
    await conn.close().catch(() => undefined)
  }
}

/** Kafka's minimum for SCRAM-SHA-512; each client login costs the broker this many rounds. */
const SCRAM_ITERATIONS = 4096
