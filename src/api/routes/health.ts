import { type EtlHealth, etlHealth, type Pool } from '../../db/index.ts'
import { answers, asProblem, problem, sendProblem } from '../problems.ts'
import { Health, Ready } from '../schemas.ts'
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
          '503 when PostgreSQL does not answer, or when the ETL is stalled: messages wait in Kafka and nothing was committed for `etlStallSec`.',
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
      try {
        health = await etlHealth(pool, stallSec)
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
          .map((p) => ({ topic: p.topic, partition: p.partition, lag: p.lag, behind_sec: p.behind_sec })),
      }
      if (health.stalled) return reply.code(503).send({ status: 'stalled', database: 'ok', etl })
      return { status: 'ready' as const, database: 'ok' as const, etl }
    },
  )
}
