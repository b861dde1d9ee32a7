import type { FastifyInstance } from 'fastify'
import { type EtlHealth, etlHealth, type Pool } from '../../db/index.ts'
import { problem } from '../problems.ts'

/** `/health`: the process is up. `/ready`: PostgreSQL answers and the ETL is not stalled. */
export function healthRoutes(app: FastifyInstance, pool: Pool, stallSec: number): void {
  app.get('/health', { schema: { summary: 'The process is up', tags: ['ops'] } }, async () => ({
    status: 'ok',
  }))
  app.get(
    '/ready',
    {
      schema: {
        summary: 'PostgreSQL answers and the ETL is not stalled; when it last committed, and its lag',
        description:
          '503 when PostgreSQL does not answer, or when the ETL is stalled: messages wait in Kafka and nothing was committed for `etlStallSec`.',
        tags: ['ops'],
      },
    },
    async (req, reply) => {
      let health: EtlHealth
      try {
        health = await etlHealth(pool, stallSec)
      } catch (error) {
        req.log.warn({ err: String(error) }, 'not ready')
        const p = problem('DATABASE_UNAVAILABLE', 'PostgreSQL did not answer')
        return reply.code(503).type('application/problem+json').send(p)
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
      return { status: 'ready', database: 'ok', etl }
    },
  )
}
