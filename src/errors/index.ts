/**
 * The project's one error module: a closed set of stable codes. Callers decide retry versus
 * give-up from `canRetry`, never by parsing messages. `meaning` is how the README and docs/etl.md
 * name each exit code (a test holds them to it).
 */
export const errorCodes = {
  CONFIG_INVALID: { canRetry: false, exitCode: 2, meaning: 'invalid configuration' },
  KAFKA_UNREACHABLE: { canRetry: true, exitCode: 3, meaning: 'Kafka unreachable' },
  DATABASE_UNREACHABLE: { canRetry: true, exitCode: 4, meaning: 'PostgreSQL unreachable' },
  OFFSET_FENCED: { canRetry: false, exitCode: 5, meaning: 'fenced by another ETL worker' },
  SERVICE_START_FAILED: { canRetry: false, exitCode: 6, meaning: 'a service failed to start' },
  PREREQUISITE_MISSING: {
    canRetry: false,
    exitCode: 7,
    meaning: 'a prerequisite (Java, the Kafka jars) is missing',
  },
  ABORTED: { canRetry: false, exitCode: 8, meaning: 'stopped by a signal before the end' },
  UNEXPECTED: { canRetry: false, exitCode: 1, meaning: 'unexpected failure' },
} as const

export type ErrorCode = keyof typeof errorCodes

export class PipelineError extends Error {
  readonly code: ErrorCode
  readonly canRetry: boolean
  readonly exitCode: number

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'PipelineError'
    this.code = code
    this.canRetry = errorCodes[code].canRetry
    this.exitCode = errorCodes[code].exitCode
  }
}

/** Every catch goes through here, so a thrown string or object still has a message and a stack. */
export function coerceError(value: unknown): Error {
  if (value instanceof Error) return value
  return new Error(typeof value === 'string' ? value : JSON.stringify(value))
}

/**
 * Maps any failure to a PipelineError, which the CLI's exit code and the ETL's retry decision
 * are read from. Kafka client errors carry `PLT_KFK_*` codes; PostgreSQL's are SQLSTATEs of class
 * 08 (connection) or 57P0x (shutdown), or a refused/reset socket.
 */
export function classify(error: unknown): PipelineError {
  const e = coerceError(error)
  if (e instanceof PipelineError) return e
  const code = String((e as { code?: unknown }).code ?? '')
  if (code.startsWith('PLT_KFK')) {
    return new PipelineError('KAFKA_UNREACHABLE', `Kafka unreachable: ${e.message}`, { cause: e })
  }
  if (
    /^(08\w{3}|57P0[1-3]|ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE)$/.test(code) ||
    /Connection terminated|not queryable|timeout exceeded when trying to connect/.test(e.message)
  ) {
    return new PipelineError('DATABASE_UNREACHABLE', `PostgreSQL unreachable: ${e.message}`, { cause: e })
  }
  return new PipelineError('UNEXPECTED', e.message, { cause: e })
}
