import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify'
import type { Pool } from '../db/index.ts'
import type { Logger } from '../shared/log.ts'
import { BadParameter } from './params.ts'
import { problem } from './problems.ts'
import { sensorDataRoutes } from './routes/sensor-data.ts'
import { stationRoutes } from './routes/stations.ts'

export interface AppOptions {
  pool: Pool
  logger?: Logger | false
}

/** The API as a Fastify instance, not listening: tests drive it with `app.inject()`. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    // Per-request lines would drown the pipeline's logs; errors are still logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  })
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'EV factory sensor API',
        version: '1',
        description: 'Readings of the plant’s stations, loaded exactly once from Kafka into PostgreSQL.',
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })

  app.setErrorHandler((error: FastifyError, req, reply) => {
    if (error instanceof BadParameter) {
      return reply.code(400).type('application/problem+json').send(error.toProblem(req.url))
    }
    if (error.validation) {
      const errors = error.validation.map((v) => ({
        parameter:
          v.instancePath.replace(/^\//, '') ||
          String(v.params?.additionalProperty ?? v.params?.missingProperty ?? ''),
        message: `${v.message ?? 'invalid'}${Array.isArray(v.params?.allowedValues) ? `: ${v.params.allowedValues.join(', ')}` : ''}`,
      }))
      const detail = errors.map((e) => `${e.parameter}: ${e.message}`).join('; ')
      return reply
        .code(400)
        .type('application/problem+json')
        .send(problem('BAD_PARAMETER', detail, { errors, instance: req.url }))
    }
    const unreachable = /ECONNREFUSED|Connection terminated|timeout exceeded when trying to connect/i.test(
      error.message,
    )
    req.log.error({ err: error }, 'request failed')
    const p = unreachable
      ? problem('DATABASE_UNAVAILABLE', 'PostgreSQL did not answer; try again shortly')
      : problem('INTERNAL', 'unexpected error; see the API log')
    return reply.code(p.status).type('application/problem+json').send(p)
  })
  app.setNotFoundHandler((req, reply) =>
    reply
      .code(404)
      .type('application/problem+json')
      .send(problem('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { instance: req.url })),
  )

  app.get('/health', { schema: { summary: 'The process is up', tags: ['ops'] } }, async () => ({
    status: 'ok',
  }))
  app.get(
    '/ready',
    { schema: { summary: 'PostgreSQL answers; when the ETL last committed', tags: ['ops'] } },
    async (req, reply) => {
      try {
        const { rows } = await opts.pool.query<{ last: Date | null }>(
          'SELECT max(updated_at) AS last FROM etl_offsets',
        )
        const last = rows[0]?.last ?? null
        return {
          status: 'ready',
          database: 'ok',
          etl: {
            last_commit_at: last?.toISOString() ?? null,
            seconds_since: last ? Math.round((Date.now() - last.getTime()) / 1000) : null,
          },
        }
      } catch (error) {
        req.log.warn({ err: String(error) }, 'not ready')
        const p = problem('DATABASE_UNAVAILABLE', 'PostgreSQL did not answer')
        return reply.code(503).type('application/problem+json').send(p)
      }
    },
  )
  sensorDataRoutes(app, opts.pool)
  stationRoutes(app, opts.pool)
  app.get('/', { schema: { hide: true } }, async (_req, reply) => reply.redirect('/docs'))
  return app
}
