import { Type } from 'typebox'
import { listDeadLetters, type Pool } from '../../db/index.ts'
import { answers } from '../problems.ts'
import { DeadLetter, DeadLettersQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

/** `GET /dead-letters`: rejected messages with their reason and a preview of their bytes (scope admin). */
export function deadLetterRoutes(app: Api, pool: Pool): void {
  app.get(
    '/dead-letters',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Rejected messages, newest first, with their reason and a preview of their bytes',
        description:
          'What `evf etl dead-letters list` shows. Re-driving them is `evf etl dead-letters retry`.',
        tags: ['ops'],
        querystring: DeadLettersQuery,
        response: answers({ 200: Type.Array(DeadLetter) }),
      },
    },
    async (req) => {
      const q = req.query
      const rows = await listDeadLetters(pool, {
        reason: q.reason,
        topic: q.topic,
        includeResolved: q.include_resolved,
        limit: q.limit,
      })
      return rows.map((r) => ({
        ...r,
        offset: Number(r.offset),
        created_at: new Date(r.created_at).toISOString(),
        resolved_at: r.resolved_at === null ? null : new Date(r.resolved_at).toISOString(),
      }))
    },
  )
}
