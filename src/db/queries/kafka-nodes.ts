import type { Pool } from '../pool.ts'

export interface KafkaNode {
  node_id: number
  address: string
  up: boolean
  since: Date
  restarts: number
}

/** The cluster's nodes as the stack last saw them, replacing what an earlier stack recorded. */
export async function recordKafkaNodes(
  pool: Pool,
  nodes: { id: number; address: string; up: boolean; since: Date; restarts: number }[],
): Promise<void> {
  await pool.query(
    `WITH now_known AS (
       SELECT * FROM unnest($1::int[], $2::text[], $3::boolean[], $4::timestamptz[], $5::int[])
         AS n(node_id, address, up, since, restarts)),
     gone AS (DELETE FROM kafka_nodes WHERE node_id NOT IN (SELECT node_id FROM now_known))
     INSERT INTO kafka_nodes SELECT * FROM now_known
     ON CONFLICT (node_id) DO UPDATE SET address = excluded.address, up = excluded.up,
       since = excluded.since, restarts = excluded.restarts`,
    [
      nodes.map((n) => n.id),
      nodes.map((n) => n.address),
      nodes.map((n) => n.up),
      nodes.map((n) => n.since),
      nodes.map((n) => n.restarts),
    ],
  )
}

export interface KafkaNodes {
  nodes: (Omit<KafkaNode, 'since'> & { since: string })[]
  down: number
  /** a majority is down: the quorum is lost and production stalls */
  quorum_lost: boolean
}

/** The nodes, as /ready, /pipeline/status and /metrics show them. */
export async function kafkaNodes(pool: Pool): Promise<KafkaNodes> {
  const { rows } = await pool.query<KafkaNode>('SELECT * FROM kafka_nodes ORDER BY node_id')
  const down = rows.filter((n) => !n.up).length
  return {
    nodes: rows.map((n) => ({ ...n, since: n.since.toISOString() })),
    down,
    quorum_lost: rows.length > 0 && down * 2 >= rows.length,
  }
}

/**
 * Records node states in the order they happened: two nodes that die together make two changes
 * in a few milliseconds, and two concurrent writes could land the older one last.
 */
export function kafkaNodesRecorder(
  pool: Pool,
  onError: (error: unknown) => void,
): (nodes: Parameters<typeof recordKafkaNodes>[1]) => Promise<void> {
  let last: Promise<void> = Promise.resolve()
  return (nodes) => {
    last = last.then(() => recordKafkaNodes(pool, nodes).catch(onError))
    return last
  }
}
