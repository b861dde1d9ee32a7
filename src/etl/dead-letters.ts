import type { Config } from '../config/index.ts'
import {
  type DeadLetterFilter,
  insertRedriven,
  inTransaction,
  loadCatalog,
  lockDeadLetters,
  markResolved,
  mergeRollups,
  type Pool,
  recordStillRejected,
  type SensorRow,
} from '../db/index.ts'
import { PipelineError } from '../errors/index.ts'
import { RollupBuilder } from './rollups.ts'
import { type ReasonCode, transformRecord, validationPolicy } from './transform.ts'

export interface RetrySummary {
  selected: number
  loaded: number
  stillRejected: { id: number; reasonCode: ReasonCode; reason: string }[]
}

/** A dead letter that passes today's rules: the row it becomes. */
interface Passing extends SensorRow {
  id: number
  reading: Readonly<Record<string, unknown>>
}

/**
 * Re-drives dead letters after a fix (a catalog change, a wider time window): each is validated
 * again from its stored raw bytes with today's rules. One that passes becomes a row of
 * `sensor_data` with its original Kafka coordinates, and its dead letter is marked resolved, in
 * one transaction; the unique key on the coordinates makes a second retry a no-op (its rollups
 * are not counted again). Set-based: a few statements for the whole selection, not a round trip
 * per dead letter.
 */
export function retryDeadLetters(
  config: Config,
  pool: Pool,
  filter: DeadLetterFilter,
): Promise<RetrySummary> {
  return inTransaction(pool, async (client) => {
    const catalog = await loadCatalog(client)
    if (!catalog)
      throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
    const selected = await lockDeadLetters(client, filter)
    const now = Date.now()
    const policy = validationPolicy(config, catalog, now)
    const passing: Passing[] = []
    const stillRejected: RetrySummary['stillRejected'] = []
    for (const dl of selected) {
      const result = transformRecord(dl, policy, new Date(now).toISOString())
      if (result.ok) passing.push({ ...result.row, id: dl.id, reading: result.reading })
      else stillRejected.push({ id: dl.id, ...result.rejection })
    }
    await recordStillRejected(client, stillRejected)
    const rollups = new RollupBuilder(catalog)
    for (const p of await insertRedriven(client, passing)) rollups.add(p.station, p.timestamp, p.reading)
    await mergeRollups(client, rollups.build())
    await markResolved(
      client,
      passing.map((p) => p.id),
    )
    return { selected: selected.length, loaded: passing.length, stillRejected }
  })
}
