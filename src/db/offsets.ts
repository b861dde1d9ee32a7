/**
 * `etl_offsets`: each partition's next offset to load (advanced only by the load transaction's
 * fence, src/etl/load.ts), its log end and since when it is behind (src/etl/watchdog.ts).
 */
import type { Pool } from './pool.ts'

/** Per-partition offsets (`topic → offset by partition`) as the column arrays `unnest` takes. */
export function partitionColumns(offsets: Map<string, bigint[]>): [string[], number[], string[]] {
  const topics: string[] = []
  const partitions: number[] = []
  const values: string[] = []
  for (const [topic, list] of offsets) {
    list.forEach((offset, partition) => {
      topics.push(topic)
      partitions.push(partition)
      values.push(offset.toString())
    })
  }
  return [topics, partitions, values]
}

/** The stored positions of `topics`' partitions, keyed `topic:partition`. */
export async function readPositions(pool: Pool, topics: string[]): Promise<Map<string, bigint>> {
  const { rows } = await pool.query<{ topic: string; partition: number; next_offset: string }>(
    'SELECT topic, partition, next_offset::text FROM etl_offsets WHERE topic = ANY($1)',
    [topics],
  )
  return new Map(rows.map((r) => [`${r.topic}:${r.partition}`, BigInt(r.next_offset)]))
}

/**
 * Makes sure every partition has an offset row (new partitions start at the log's earliest
 * offset) and returns the stored positions, keyed `topic:partition`.
 */
export async function initOffsets(pool: Pool, earliest: Map<string, bigint[]>): Promise<Map<string, bigint>> {
  await pool.query(
    `INSERT INTO etl_offsets (topic, partition, next_offset)
     SELECT * FROM unnest($1::text[], $2::int[], $3::bigint[]) ON CONFLICT DO NOTHING`,
    partitionColumns(earliest),
  )
  return readPositions(pool, [...earliest.keys()])
}

/**
 * Records each partition's log end next to its stored position, and when the partition was
 * first seen behind since its last commit. Returns nothing: readers use `etlHealth`.
 */
export async function recordLogEnds(
  pool: Pool,
  ends: Map<string, bigint[]>,
  opts: { watch: boolean },
): Promise<void> {
  await pool.query(
    `UPDATE etl_offsets o SET end_offset = u.e, end_offset_at = now()${
      opts.watch
        ? ', behind_since = CASE WHEN u.e > o.next_offset THEN coalesce(o.behind_since, now()) END'
        : ''
    }
     FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u(t, p, e)
     WHERE o.topic = u.t AND o.partition = u.p`,
    partitionColumns(ends),
  )
}
