import type { Admin } from '@platformatic/kafka'
import { kafkaCodes, kafkaRefusal, PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'

/**
 * Creates the topics that do not exist yet; existing ones are left as they are. Listing needs
 * only DESCRIBE, so a component whose topics exist never asks for CreateTopics: on a secured
 * broker only `admin` may create them (`stack up` does, before it starts the components), and a
 * component that finds one missing says so instead of retrying.
 */
export async function ensureTopics(
  admin: Admin,
  topics: string[],
  partitions: number,
  log: Logger,
  user = '',
): Promise<void> {
  const existing = new Set(await admin.listTopics())
  const missing = topics.filter((t) => !existing.has(t))
  if (missing.length === 0) return
  try {
    await admin.createTopics({ topics: missing, partitions, replicas: -1 }) // -1: the cluster's default replication factor
  } catch (error) {
    // Another process created them in between: what this call wanted.
    if (kafkaCodes(error).has('TOPIC_ALREADY_EXISTS')) return
    if (!kafkaRefusal(error)) throw error
    throw new PipelineError(
      'KAFKA_AUTH',
      `topics ${missing.join(', ')} do not exist and Kafka user "${user || '(none)'}" may not create them: \`evf stack up\` creates them as admin, or ask the cluster's operator to`,
      { cause: error },
    )
  }
  log.info({ topics: missing, partitions }, 'created topics')
}

/**
 * The topics under `prefix` (the pipeline's namespace; Kafka's internal ones aside), as far as the
 * user may describe them: the ETL reads them all, so a reading of a station the catalog does not
 * know yet is a dead letter to re-drive, not a message nobody reads.
 */
export async function prefixedTopics(admin: Admin, prefix: string): Promise<string[]> {
  return (await admin.listTopics()).filter((t) => t.startsWith(prefix) && !t.startsWith('__'))
}
