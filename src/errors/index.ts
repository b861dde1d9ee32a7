/**
 * The project's one error module: a closed set of stable codes. Callers decide retry versus
 * give-up from `canRetry`, never by parsing messages.
 */
export const errorCodes = {
  CONFIG_INVALID: { canRetry: false, exitCode: 2 },
  KAFKA_UNREACHABLE: { canRetry: true, exitCode: 3 },
  DATABASE_UNREACHABLE: { canRetry: true, exitCode: 4 },
  OFFSET_FENCED: { canRetry: false, exitCode: 5 },
  SERVICE_START_FAILED: { canRetry: false, exitCode: 6 },
  PREREQUISITE_MISSING: { canRetry: false, exitCode: 7 },
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

/** Maps a failure to the error the CLI's exit code is read from. */
export function classify(error: unknown): PipelineError {
  const e = coerceError(error)
  if (e instanceof PipelineError) return e
  const code = (e as { code?: string }).code ?? ''
  const text = `${code} ${e.message}`
  if (
    /ECONNREFUSED|ECONNRESET|ETIMEDOUT|57P0[123]|08\d{3}|Connection terminated|connect/i.test(text) &&
    !/PLT_KFK/.test(code)
  ) {
    return new PipelineError('DATABASE_UNREACHABLE', `PostgreSQL unreachable: ${e.message}`, { cause: e })
  }
  if (/PLT_KFK|kafka|broker/i.test(text)) {
    return new PipelineError('KAFKA_UNREACHABLE', `Kafka unreachable: ${e.message}`, { cause: e })
  }
  return new PipelineError('SERVICE_START_FAILED', e.message, { cause: e })
}
