import type { Admin } from '@platformatic/kafka'
import type { Logger } from '../shared/log.ts'

/** Creates the topics that do not exist yet; existing ones are left as they are. */
export async function ensureTopics(
  admin: Admin,
  topics: string[],
  partitions: number,
  log: Logger,
): Promise<void> {
  const existing = new Set(await admin.listTopics())
  const missing = topics.filter((t) => !existing.has(t))
  if (missing.length === 0) return
  await admin.createTopics({ topics: missing, partitions, replicas: -1 }) // -1: the cluster's default replication factor
  log.info({ topics: missing, partitions }, 'created topics')
}
