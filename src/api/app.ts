import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  LogController,
} from 'fastify'
import type { Config } from '../config/index.ts'
import type { Pool } from '../db/index.ts'
import { classify } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { ResponseCache, useResponseCache } from './cache.ts'
import { LiveFeed } from './live.ts'
import { BadParameter } from './params.ts'
import { problem } from './problems.ts'
import { dashboardRoutes } from './routes/dashboard.ts'
import { exportRoutes } from './routes/export.ts'
import { healthRoutes } from './routes/health.ts'
import { metricsRoutes } from './routes/metrics.ts'
import { pipelineRoutes } from './routes/pipeline.ts'
import { sensorDataRoutes } from './routes/sensor-data.ts'
import { stationRoutes } from './routes/stations.ts'
import { statsRoutes } from './routes/stats.ts'
import { streamRoutes } from './routes/stream.ts'

export interface AppOptions {
  pool: Pool
  logger?: Logger | false
  /** the hardening settings; defaults as documented in the README */
  config?: Partial<Pick<Config, 'apiCorsOrigins' | 'apiRateLimit' | 'apiCacheMs' | 'etlStallSec'>>
  /** where the built dashboard is (tests) */
  dashboardDir?: string
}

/** Longest URL (path and query) accepted: longer ones are refused before routing. */
const MAX_URL_BYTES = 4096

/** The API as a Fastify instance, not listening: tests drive it with `app.inject()`. */
export async function buildApp(opts: AppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    // Per-request lines would drown the pipeline's logs; errors are still logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    // Server-Sent Events and exports hold connections open: close them rather than wait.
    forceCloseConnections: true,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true } },
  })
  await harden(app, opts.config)
  await registerDocs(app)
  answerErrorsAsProblems(app)
  const stallSec = opts.config?.etlStallSec ?? 30
  healthRoutes(app, opts.pool, stallSec)
  const feed = new LiveFeed(opts.pool, opts.logger || undefined)
  app.addHook('onClose', async () => feed.close())
  const cache = new ResponseCache(opts.config?.apiCacheMs ?? 1000)
  if (cache.enabled) {
    feed.onCommit(() => cache.invalidate())
    app.addHook('onReady', async () => feed.start())
    useResponseCache(app, cache, () => feed.listening)
  }
  sensorDataRoutes(app, opts.pool)
  streamRoutes(app, opts.pool, feed)
  stationRoutes(app, opts.pool)
  statsRoutes(app, opts.pool)
  pipelineRoutes(app, opts.pool, stallSec)
  metricsRoutes(app, opts.pool, stallSec, cache)
  exportRoutes(app, opts.pool)
  await dashboardRoutes(app, { dir: opts.dashboardDir })
  return app
}

/**
 * Security headers (a CSP that fits the dashboard and /docs), CORS only for the configured
 * origins, a rate limit per client address, a bound on the URL's length.
 */
async function harden(app: FastifyInstance, config: AppOptions['config']): Promise<void> {
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", 'data:'],
        connectSrc: ["'self'"],
      },
    },
  })
  const origins = (config?.apiCorsOrigins ?? '').split(',').filter(Boolean)
  await app.register(cors, {
    origin: origins.includes('*') ? '*' : origins.length > 0 ? origins : false,
    methods: ['GET', 'HEAD'],
  })
  const max = config?.apiRateLimit ?? 6000
  if (max > 0) {
    await app.register(rateLimit, {
      max,
      timeWindow: '1 minute',
      errorResponseBuilder: (req, ctx) => ({
        ...problem('RATE_LIMITED', `more than ${ctx.max} requests in ${ctx.after}; slow down`, {
          instance: req.url,
        }),
        statusCode: 429,
      }),
    })
  }
  app.addHook('onRequest', async (req, reply) => {
    if (Buffer.byteLength(req.url) > MAX_URL_BYTES) {
      const p = problem('BAD_PARAMETER', `the URL is longer than ${MAX_URL_BYTES} bytes`, {
        instance: req.url.slice(0, 200),
      })
      return reply.code(400).type('application/problem+json').send(p)
    }
  })
}

/** The OpenAPI document at /docs/json and the interactive docs at /docs. */
async function registerDocs(app: FastifyInstance): Promise<void> {
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
}

/** Every error as application/problem+json: a 400 that names the parameter, 404, 429, 5xx. */
function answerErrorsAsProblems(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, req, reply) => {
    if (error.statusCode === 429) {
      return reply.code(429).type('application/problem+json').send(error)
    }
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
    req.log.error({ err: error }, 'request failed')
    // The project's one classifier (SQLSTATEs and socket codes first) decides what is an outage.
    const p =
      classify(error).code === 'DATABASE_UNREACHABLE'
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
}
