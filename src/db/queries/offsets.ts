/**
 * `etl_offsets`: each partition's next offset to load (advanced only by the load transaction's
 * fence, load.ts), its log end and since when it is behind (src/etl/watchdog.ts).
 */
import type { Pool } from '../pool.ts'

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
 * Records each partition's log end (`etl_lag`), with the position seen at that moment and when it
 * last moved. `watched`: the continuous ETL's watchdog, whose observations decide a stall. Reads
 * `etl_offsets` without locking it: a load in progress is neither waited for nor blocked.
 */
export async function recordLogEnds(
  pool: Pool,
  ends: Map<string, bigint[]>,
  opts: { watch: boolean },
): Promise<void> {
  await pool.query(
    `INSERT INTO etl_lag AS l (topic, partition, end_offset, end_offset_at, seen_next_offset, progress_at, watched)
     SELECT u.t, u.p, u.e, now(), o.next_offset, now(), $4
     FROM unnest($1::text[], $2::int[], $3::bigint[]) AS u(t, p, e)
     JOIN etl_offsets o ON o.topic = u.t AND o.partition = u.p
     ON CONFLICT (topic, partition) DO UPDATE SET
       end_offset = EXCLUDED.end_offset, end_offset_at = now(), watched = EXCLUDED.watched,
       seen_next_offset = EXCLUDED.seen_next_offset,
       progress_at = CASE
         WHEN EXCLUDED.seen_next_offset <> l.seen_next_offset OR EXCLUDED.end_offset <= EXCLUDED.seen_next_offset
           OR NOT l.watched THEN now()
         ELSE l.progress_at END`,
    [...partitionColumns(ends), opts.watch],
  )
}
