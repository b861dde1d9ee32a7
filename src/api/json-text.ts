import type { FastifyReply } from 'fastify'

/**
 * Sends JSON text that PostgreSQL built in the shape of the route's 200 schema, past the
 * serializer (which would otherwise encode the string as a JSON string).
 */
export function sendJsonText(reply: FastifyReply, json: string): FastifyReply {
  // The reply's type is the route's answer schema; this text is that answer, already serialised.
  return reply
    .type('application/json; charset=utf-8')
    .serializer((p: unknown) => p as string)
    .send(json as never)
}
