import type { FastifyReply } from 'fastify'
import { Problem, type ProblemCode, problems } from './schemas.ts'

export type { Problem, ProblemCode } from './schemas.ts'
export { problems } from './schemas.ts'

export function problem(code: ProblemCode, detail: string, extra: Partial<Problem> = {}): Problem {
  const { status, title } = problems[code]
  return { type: `/docs/problems#${code.toLowerCase()}`, title, status, detail, code, ...extra }
}

/** Answers a problem as `application/problem+json` with its status. */
export function sendProblem(reply: FastifyReply, p: Problem): FastifyReply {
  return reply.code(p.status).type('application/problem+json').send(p)
}

/** A response schema: a problem, as application/problem+json. */
export const asProblem = { content: { 'application/problem+json': { schema: Problem } } }

/**
 * A route's `response` schemas: its success answers, and the problems any route can answer —
 * 400 (a bad parameter, or a URL too long), 429 (rate limit), 500, 503 (PostgreSQL away) — plus
 * 404 when the route names a resource that may not exist, and 409 when what it does depends on
 * the resource's state.
 */
export function answers<T extends Record<number, unknown>>(
  ok: T,
  opts: { notFound?: boolean; conflict?: boolean } = {},
) {
  return {
    ...ok,
    400: asProblem,
    ...(opts.notFound ? { 404: asProblem } : {}),
    ...(opts.conflict ? { 409: asProblem } : {}),
    429: asProblem,
    500: asProblem,
    503: asProblem,
  }
}
