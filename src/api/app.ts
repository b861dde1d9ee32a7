import cors from '@fastify/cors'
import helmet from '@fastify/helmet'
import rateLimit from '@fastify/rate-limit'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyRequest,
  LogController,
} from 'fastify'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import type { Alarms } from '../alarms/index.ts'
import { type Catalog, catalogFromFile } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { loadCatalog, type Pool } from '../db/index.ts'
import { classify } from '../errors/index.ts'
import type { Logger } from '../shared/log.ts'
import { AlarmFeed } from './alarm-feed.ts'
import { SESSION_COOKIE, useAuth } from './auth.ts'
import { validateBodiesUncoerced } from './body-validation.ts'
import { ResponseCache, useResponseCache } from './cache.ts'
import { catalogKeyword, LiveCatalog, withCatalogEnums } from './catalog.ts'
import { LiveFeed } from './live.ts'
import type { EvaluatorOf } from './pipeline-status.ts'
import { problem, sendProblem } from './problems.ts'
import { alarmRuleRoutes } from './routes/alarm-rules.ts'
import { alarmRoutes } from './routes/alarms.ts'
import { dashboardRoutes } from './routes/dashboard.ts'
import { deadLetterRoutes } from './routes/dead-letters.ts'
import { exportRoutes } from './routes/export.ts'
import { healthRoutes } from './routes/health.ts'
import { metricsRoutes } from './routes/metrics.ts'
import { pipelineRoutes } from './routes/pipeline.ts'
import { sensorDataRoutes } from './routes/sensor-data.ts'
import { stationRoutes } from './routes/stations.ts'
import { statsRoutes } from './routes/stats.ts'
import { streamRoutes } from './routes/stream.ts'
import type { Api } from './types.ts'

export interface AppOptions {
  pool: Pool
  /** where readings and statistics are read from (a hot standby, DATABASE_READ_URL); default `pool` */
  readPool?: Pool
  /** authentication (docs/security.md): `off` only where the API is bound to loopback */
  auth: 'on' | 'off'
  /** serve HTTPS with this PEM pair (the session cookie is then Secure) */
  tls?: { cert: Buffer; key: Buffer }
  logger?: Logger | false
  /** the hardening settings; defaults as documented in the README */
  config?: Partial<
    Pick<Config, 'apiCorsOrigins' | 'apiRateLimit' | 'apiCacheMs' | 'etlStallSec' | 'apiAuthFailures'>
  >
  /** where the built dashboard is (tests) */
  dashboardDir?: string
  /**
   * Alarms evaluated in this process (EVF_ALARM_EVALUATOR=api, `startAlarms` of src/alarms):
   * started with the catalog in force once the app is ready, told of each new catalog version,
   * closed with the app.
   */
  alarms?: (catalog: () => Catalog) => Alarms
}

/** Longest URL (path and query) accepted: longer ones are refused before routing. */
const MAX_URL_BYTES = 4096

/** The API as a Fastify instance, not listening: tests drive it with `app.inject()`. */
export async function buildApp(opts: AppOptions): Promise<Api> {
  // The catalog in force, followed live. Until PostgreSQL answers (the API starts without it, and
  // says 503), or before any catalog is applied, the project's file stands in.
  const applied = await loadCatalog(opts.pool).catch((error: unknown) => {
    if (opts.logger)
      opts.logger.warn(
        { err: String(error) },
        'cannot read the catalog yet: the file stands in until PostgreSQL answers',
      )
    return undefined
  })
  const live = new LiveCatalog(applied ?? catalogFromFile())
  const app = Fastify({
    // HTTPS when a pair is given; the instance is typed as HTTP's, whose API it shares.
    ...((opts.tls ? { https: opts.tls } : {}) as object),
    loggerInstance: (opts.logger || undefined) as FastifyBaseLogger | undefined,
    // Per-request lines would drown the pipeline's logs; errors are still logged by the handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    routerOptions: { maxParamLength: 200 },
    // Server-Sent Events and exports hold connections open: close them rather than wait.
    forceCloseConnections: true,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: true },
      plugins: [catalogKeyword(live)],
    },
  }).withTypeProvider<TypeBoxTypeProvider>()
  answerOtherMethodsWith405(app)
  validateBodiesUncoerced(app, live)
  await harden(app, opts.config, opts.tls !== undefined)
  await useAuth(app, {
    mode: opts.auth,
    pool: opts.pool,
    secure: opts.tls !== undefined,
    failuresPerMinute: opts.config?.apiAuthFailures ?? 20,
  })
  await registerDocs(app, live)
  answerErrorsAsProblems(app)
  app.addHook('onReady', async () => live.follow(opts.pool, opts.logger || undefined))
  app.addHook('onClose', async () => live.close())
  const stallSec = opts.config?.etlStallSec ?? 30
  healthRoutes(app, opts.pool, stallSec)
  const evaluator = opts.alarms && runAlarms(app, opts.alarms, live, opts.logger || undefined)
  const feed = new LiveFeed(opts.pool, opts.logger || undefined)
  app.addHook('onClose', async () => feed.close())
  const alarmFeed = new AlarmFeed(opts.pool, opts.logger || undefined)
  app.addHook('onClose', async () => alarmFeed.close())
  const cache = new ResponseCache(opts.config?.apiCacheMs ?? 1000)
  if (cache.enabled) {
    feed.onCommit(() => cache.invalidate())
    // A new catalog version changes answers too (limits, inspection results, stations).
    live.onChange(() => cache.invalidate())
    app.addHook('onReady', async () => feed.start())
    useResponseCache(app, cache, () => feed.listening)
  }
  // Reads go to the standby when there is one; the live feed (LISTEN, and the rows a commit
  // names), health, credentials and the pipeline's own tables stay on the primary.
  const reads = opts.readPool ?? opts.pool
  const replica = opts.readPool && opts.readPool !== opts.pool ? opts.readPool : undefined
  sensorDataRoutes(app, reads)
  streamRoutes(app, opts.pool, feed, live, alarmFeed)
  stationRoutes(app, reads, live)
  statsRoutes(app, reads, live)
  pipelineRoutes(app, opts.pool, stallSec, evaluator, replica)
  metricsRoutes(app, opts.pool, stallSec, evaluator, cache, replica)
  exportRoutes(app, reads)
  deadLetterRoutes(app, opts.pool)
  // Alarms are written by the evaluator and by operators: always on the primary.
  alarmRoutes(app, opts.pool)
  alarmRuleRoutes(app, opts.pool, live)
  await dashboardRoutes(app, { dir: opts.dashboardDir })
  return app
}

/**
 * Starts the process's alarm evaluator once the app is ready, tells it of each catalog version
 * (its default rules, its limits), and closes it with the app. Answers what /metrics and
 * /pipeline/status read of it.
 */
function runAlarms(
  app: Api,
  start: NonNullable<AppOptions['alarms']>,
  live: LiveCatalog,
  log: Logger | undefined,
): EvaluatorOf {
  let alarms: Alarms | undefined
  app.addHook('onReady', async () => {
    alarms = start(() => live.catalog)
    live.onChange((catalog) => {
      alarms?.evaluator.catalogChanged(catalog).catch((error: unknown) => {
        log?.warn({ err: String(error) }, 'the alarm evaluator could not follow the new catalog')
      })
    })
  })
  app.addHook('onClose', async () => alarms?.close())
  return () => alarms?.evaluator
}

/**
 * Security headers (a CSP that fits the dashboard and /docs), CORS only for the configured
 * origins, a rate limit per client address, a bound on the URL's length.
 */
async function harden(app: Api, config: AppOptions['config'], https: boolean): Promise<void> {
  await app.register(helmet, {
    // HSTS over HTTPS only: browsers ignore it over HTTP, and localhost's other apps are not ours.
    strictTransportSecurity: https ? { maxAge: 31_536_000, includeSubDomains: true } : false,
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
      return sendProblem(reply, p)
    }
    // The query parser drops a parameter without a name (`?=1`); refuse it as any unknown one.
    const query = req.url.indexOf('?')
    if (query >= 0 && /(^|&)=/.test(req.url.slice(query + 1))) {
      const p = problem('BAD_PARAMETER', 'a query parameter has no name', { instance: req.url.slice(0, 200) })
      return sendProblem(reply, p)
    }
  })
}

/**
 * The OpenAPI document at /docs/json and the interactive docs at /docs. The document follows the
 * catalog: each request of it puts the stations and measurements in force into its `enum`s.
 */
async function registerDocs(app: Api, live: LiveCatalog): Promise<void> {
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer', description: 'a token from `evf tokens create`' },
          session: {
            type: 'apiKey',
            in: 'cookie',
            name: SESSION_COOKIE,
            description: 'the dashboard’s login',
          },
        },
      },
      info: {
        title: 'EV factory sensor API',
        version: '1',
        description: 'Readings of the plant’s stations, loaded exactly once from Kafka into PostgreSQL.',
      },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  app.addHook('onRequest', async (req) => {
    if (req.url.startsWith('/docs/json')) withCatalogEnums(app.swagger(), live)
  })
}

/** Every error as application/problem+json: a 400 that names the parameter, 404, 405, 429, 5xx. */
function answerErrorsAsProblems(app: Api): void {
  app.setErrorHandler((error: FastifyError, req, reply) => {
    if (error.statusCode === 429) {
      return reply.code(429).type('application/problem+json').send(error)
    }
    if (error.validation) {
      const errors = validationErrors(error, req)
      const detail = errors.map((e) => `${e.parameter}: ${e.message}`).join('; ')
      return sendProblem(reply, problem('BAD_PARAMETER', detail, { errors, instance: req.url }))
    }
    if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
      // Refused by the HTTP layer before any handler ran (a body where none is taken, say).
      return sendProblem(reply, {
        ...problem('BAD_PARAMETER', error.message, { instance: req.url }),
        status: error.statusCode,
      })
    }
    req.log.error({ err: error }, 'request failed')
    // The project's one classifier (SQLSTATEs and socket codes first) decides what is an outage.
    const p =
      classify(error).code === 'DATABASE_UNREACHABLE'
        ? problem('DATABASE_UNAVAILABLE', 'PostgreSQL did not answer; try again shortly')
        : problem('INTERNAL', 'unexpected error; see the API log')
    return sendProblem(reply, p)
  })
  app.setNotFoundHandler((req, reply) =>
    sendProblem(
      reply,
      problem('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`, { instance: req.url }),
    ),
  )
}

/**
 * Ajv's findings as one entry per parameter. A parameter with alternatives (a time: date-time,
 * date or epoch seconds) fails every branch: it is described once, by its schema's description.
 */
function validationErrors(
  error: FastifyError,
  req: FastifyRequest,
): { parameter: string; message: string }[] {
  const part = error.validationContext ?? 'querystring'
  const schema = (req.routeOptions.schema?.[part as 'querystring'] ?? {}) as {
    properties?: Record<string, { description?: string }>
  }
  const byParameter = new Map<string, string[]>()
  for (const v of error.validation ?? []) {
    const parameter =
      v.instancePath.replace(/^\//, '').split('/')[0] ||
      String(v.params?.additionalProperty ?? v.params?.missingProperty ?? '') ||
      part
    const messages = byParameter.get(parameter) ?? []
    if (v.keyword === 'anyOf') {
      const description = schema.properties?.[parameter]?.description
      messages.splice(
        0,
        messages.length,
        description ? `must be ${description}` : 'matches none of its forms',
      )
      byParameter.set(parameter, messages)
      continue
    }
    if (messages.some((m) => m.startsWith('must be '))) continue
    const allowed = Array.isArray(v.params?.allowedValues) ? `: ${v.params.allowedValues.join(', ')}` : ''
    messages.push(`${v.message ?? 'invalid'}${allowed}`)
    byParameter.set(parameter, messages)
  }
  return [...byParameter].map(([parameter, messages]) => ({ parameter, message: messages.join('; ') }))
}

/**
 * A path that exists, asked with a method it does not answer, is a 405 with `Allow` (RFC 9110),
 * not a 404: the routes are mirrored into a router of their own, which says what a path takes.
 */
function answerOtherMethodsWith405(app: Api): void {
  const routes = FindMyWay()
  const noop = () => undefined
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      // The CORS plugin's catch-all OPTIONS is for preflights, not a method of every resource.
      if (method === 'OPTIONS' && route.url.includes('*')) continue
      if (!routes.hasRoute(method as HTTPMethod, route.url)) routes.on(method as HTTPMethod, route.url, noop)
    }
  })
  app.addHook('onRequest', async (req, reply) => {
    if (!req.is404) return
    const path = req.url.split('?')[0] ?? '/'
    const allow = (['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const).filter(
      (m) => routes.find(m, path) !== null,
    )
    if (allow.length === 0) return
    reply.header('allow', allow.join(', '))
    return sendProblem(
      reply,
      problem(
        'METHOD_NOT_ALLOWED',
        `${req.method} is not answered by ${path}; allowed: ${allow.join(', ')}`,
        {
          instance: req.url,
        },
      ),
    )
  })
}
