/**
 * Every error the API returns, in one table: a stable code, its HTTP status and title. Rendered
 * as RFC 9457 `application/problem+json`. `docs/api.md` lists the same codes (a test checks).
 */
export const problems = {
  BAD_PARAMETER: { status: 400, title: 'A request parameter is invalid' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'The database is not reachable' },
  INTERNAL: { status: 500, title: 'Internal error' },
} as const

export type ProblemCode = keyof typeof problems

export interface Problem {
  type: string
  title: string
  status: number
  detail: string
  code: ProblemCode
  instance?: string
  errors?: { parameter: string; message: string }[]
}

export function problem(code: ProblemCode, detail: string, extra: Partial<Problem> = {}): Problem {
  const { status, title } = problems[code]
  return { type: `/docs/problems#${code.toLowerCase()}`, title, status, detail, code, ...extra }
}
