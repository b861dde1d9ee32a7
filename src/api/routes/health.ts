import {
  type AlarmHealth,
  alarmHealth,
  type EtlHealth,
  etlHealth,
  type KafkaNodes,
  kafkaNodes,
  type Pool,
} from '../../db/index.ts'
import { evaluation } from '../pipeline-status.ts'
import { answers, asProblem, problem, sendProblem } from '../problems.ts'
import { Health, Ready } from '../schemas.ts'
import type { IngestSource } from '../schemas-sources.ts'
import { sourcesStatus } from '../sources.ts'
import type { Api } from '../types.ts'

/** `/health`: the process is up. `/ready`: PostgreSQL answers and the ETL is not stalled. */
export function healthRoutes(app: Api, pool: Pool, stallSec: number): void {
  app.get(
    '/health',
    {
      config: { scope: 'public' },
      schema: { summary: 'The process is up', tags: ['ops'], response: answers({ 200: Health }) },
    },
    async () => ({ status: 'ok' as const }),
  )
  app.get(
    '/ready',
    {
      config: { scope: 'public' },
      schema: {
        summary: 'PostgreSQL answers and the ETL is not stalled; when it last committed, and its lag',
        description:
          '503 when PostgreSQL does not answer, when the ETL is stalled (messages wait in Kafka and nothing was committed for `etlStallSec`, or a partition is held back at a record batch that cannot be decoded: its `reason` says which), or when the embedded Kafka cluster has lost its quorum (production stalls). A cluster with a node down but its quorum kept is `degraded`, 200; so are alarms no longer evaluated (an evaluator ran, and has not ticked for 30 s: `alarms`), and a device source that is down (`sources`: disconnected from its broker or server, or its `evf ingest` gone).',
        tags: ['ops'],
        // 503 is a stalled ETL (this shape) or PostgreSQL away (a problem).
        response: {
          ...answers({ 200: Ready }),
          503: { content: { 'application/json': { schema: Ready }, ...asProblem.content } },
        },
      },
    },
    async (req, reply) => {
      let health: EtlHealth
      let kafka: KafkaNodes
      let alarmsHealth: AlarmHealth
      let sources: IngestSource[]
      try {
        ;[health, kafka, alarmsHealth, sources] = await Promise.all([
          etlHealth(pool, stallSec),
          kafkaNodes(pool),
          alarmHealth(pool),
          sourcesStatus(pool),
        ])
      } catch (error) {
        req.log.warn({ err: String(error) }, 'not ready')
        return sendProblem(reply, problem('DATABASE_UNAVAILABLE', 'PostgreSQL did not answer'))
      }
      const since = (d: Date | null) => (d ? Math.round((Date.now() - d.getTime()) / 1000) : null)
      const etl = {
        last_commit_at: health.last_commit_at?.toISOString() ?? null,
        seconds_since: since(health.last_commit_at),
        // Messages in Kafka not yet loaded, as of the end offsets last recorded.
        lag: health.lag,
        lag_as_of: health.lag_as_of?.toISOString() ?? null,
        stalled: health.stalled,
        stall_sec: stallSec,
        stalled_partitions: health.partitions
          .filter((p) => p.stalled)
          .map((p) => ({
            topic: p.topic,
            partition: p.partition,
            lag: p.lag,
            behind_sec: p.behind_sec,
            reason: p.blocked_reason,
          })),
      }
      const alarms = evaluation(alarmsHealth)
      // An evaluator that ran and stopped ticking: nobody would be told of a drift.
      if (!alarms.evaluating && alarms.heartbeat_age_sec !== null)
        req.log.warn({ heartbeat_age_sec: alarms.heartbeat_age_sec }, 'alarms are not being evaluated')
      const down = sources.filter((s) => !s.up)
      // A device source that is away: its stations' readings stop arriving.
      if (down.length > 0) req.log.warn({ sources: down.map((s) => s.source) }, 'device sources are down')
      const all = { database: 'ok' as const, etl, kafka, alarms, sources }
      if (health.stalled) return reply.code(503).send({ status: 'stalled', ...all })
      if (kafka.quorum_lost) return reply.code(503).send({ status: 'kafka-unavailable', ...all })
      const alarmsDown = !alarms.evaluating && alarms.heartbeat_age_sec !== null
      const degraded = kafka.down > 0 || alarmsDown || down.length > 0
      return { status: degraded ? ('degraded' as const) : ('ready' as const), ...all }
    },
  )
}
