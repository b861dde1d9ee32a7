/**
 * `evf ingest`: readings from real devices — MQTT topics (our JSON), Sparkplug B edge nodes, OPC
 * UA servers — into the station topics in our message format, as Kafka user `ingest`
 * (docs/devices.md). A device's message is acknowledged only after Kafka acknowledged its reading.
 */
import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { CatalogFollower, createPool, loadCatalog } from '../db/index.ts'
import { PipelineError } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { planSources } from './plan.ts'
import { KafkaSink } from './sink.ts'
import { SourceStatus, StatusRecorder } from './status.ts'
import type { RunningSource, SourceKind, StartSource } from './types.ts'

export { planSources } from './plan.ts'
export type { IngestedReading, SourcePlan } from './types.ts'

/** Each kind's module, loaded only when a source of that kind runs (node-opcua alone takes 0.5 s and 150 MB). */
const starters: Record<SourceKind, () => Promise<StartSource>> = {
  mqtt: async () => (await import('./mqtt.ts')).startMqtt,
  sparkplug: async () => (await import('./sparkplug.ts')).startSparkplug,
  opcua: async () => (await import('./opcua.ts')).startOpcua,
}

/**
 * Runs every source the catalog (and the simulator's transport) names until `signal` aborts,
 * then stops them (a source stops acknowledging first), flushes what Kafka has not yet
 * acknowledged, and records the sources as disconnected. Without any source it says so and ends.
 */
export async function runIngest(config: Config, log: Logger, signal: AbortSignal): Promise<void> {
  const pool = createPool(config.databaseUrl, { max: 2, application: 'evf-ingest' })
  let follower: CatalogFollower | undefined
  try {
    const applied = await loadCatalog(pool)
    if (!applied)
      throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
    let catalog: Catalog = applied
    follower = new CatalogFollower(pool, applied, (next) => (catalog = next), log)
    const plans = planSources(config, applied)
    if (plans.length === 0) {
      log.warn('no station of the catalog has a source, and the simulator sends to Kafka: nothing to ingest')
      return
    }
    const statuses = plans.map((p) => new SourceStatus(p))
    const recorder = new StatusRecorder(pool, statuses, log)
    await recorder.write()
    const sink = new KafkaSink(config, () => catalog, config.topicPrefix, log)
    const running: RunningSource[] = []
    try {
      for (const status of statuses) {
        const start = await starters[status.plan.kind]()
        running.push(
          await start(status.plan, { config, catalog: () => catalog, sink, status, recorder, log }),
        )
      }
      log.info(
        { sources: plans.map((p) => ({ kind: p.kind, endpoint: p.endpoint, stations: p.stations.length })) },
        'ingest running',
      )
      await new Promise<void>((resolve) =>
        signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true }),
      )
    } finally {
      for (const r of running.reverse())
        await r.stop().catch((e) => log.warn({ err: String(e) }, 'stop failed'))
      await sink.close()
      await recorder.close()
    }
    log.info(
      { sources: statuses.map((s) => ({ source: s.plan.id, in: s.messagesIn, produced: s.produced })) },
      'ingest stopped',
    )
  } finally {
    await follower?.close()
    await pool.end()
  }
}
