import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import fastifyStatic from '@fastify/static'
import type { FastifyInstance } from 'fastify'
import { repoRoot } from '../../shared/paths.ts'

/** Where `npm run build:web` (and the setup script) put the dashboard. */
export const dashboardDir = join(repoRoot, 'dist/web')

/**
 * The plant dashboard (web/, built by Vite into dist/web): `GET /` answers index.html, never
 * cached, so a new build is picked up on the next load; the files it names under /assets/ carry
 * a hash of their content in their name and are cached for a year. `dir` is for tests.
 */
export async function dashboardRoutes(app: FastifyInstance, opts: { dir?: string } = {}): Promise<void> {
  const dir = opts.dir ?? dashboardDir
  await app.register(fastifyStatic, {
    root: join(dir, 'assets'),
    prefix: '/assets/',
    // @fastify/swagger-ui registers its own @fastify/static, which decorates the reply already.
    decorateReply: false,
    // A build made after the API started is served as well; a missing build is reported at `/`.
    suppressWarning: true,
    index: false,
    cacheControl: true,
    maxAge: '365d',
    immutable: true,
  })

  app.get('/', { config: { scope: 'public' }, schema: { hide: true } }, async (req, reply) => {
    let html: Buffer
    try {
      html = await readFile(join(dir, 'index.html'))
    } catch (error) {
      req.log.warn({ err: String(error) }, 'dashboard not built')
      // Plain text, not problem+json: this is for a person at a browser, and not an API error code.
      return reply
        .code(503)
        .header('cache-control', 'no-store')
        .type('text/plain; charset=utf-8')
        .send('The dashboard is not built: run `npm run build:web` (or `npm start`, which builds it).\n')
    }
    return reply.header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html)
  })
}
