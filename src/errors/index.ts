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
  KAFKA_AUTH: {
    canRetry: false,
    exitCode: 9,
    meaning: 'Kafka refused the login or the operation',
  },
  KAFKA_UNDECODABLE_BATCH: {
    canRetry: false,
    exitCode: 10,
    meaning: 'a Kafka record batch could not be decoded',
  },
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
 * 08 (connection) or 57P0x (shutdown), or a refused/reset socket. A Kafka login refused or an
 * operation its ACLs deny is KAFKA_AUTH, never retried; `kafkaUser` names the user in its message.
 */
export function classify(error: unknown, kafkaUser?: string): PipelineError {
  const e = coerceError(error)
  if (e instanceof PipelineError) return e
  const code = String((e as { code?: unknown }).code ?? '')
  const refused = kafkaRefusal(e)
  if (refused) {
    const who = kafkaUser ? `Kafka user "${kafkaUser}"` : 'the Kafka user'
    const message =
      refused === 'authentication'
        ? `Kafka refused the login of ${who} (SASL authentication failed): check KAFKA_USERNAME, KAFKA_PASSWORD and EVF_KAFKA_SASL_MECHANISM (the embedded broker's users are in <dataDir>/secrets/kafka.json)`
        : `${who} is not allowed to do this (${refused}): its ACLs do not cover it (docs/security.md, "Kafka")`
    return new PipelineError('KAFKA_AUTH', message, { cause: e })
  }
  // A batch the client could not decode (a codec it lacks, corrupt bytes): the broker answered,
  // and asking again gets the same bytes. The ETL's consumer holds such a partition back itself
  // (kafka/undecodable.ts); this names whatever still reaches here.
  if ([...kafkaCodes(e)].some((c) => UNDECODABLE.test(c))) {
    return new PipelineError(
      'KAFKA_UNDECODABLE_BATCH',
      `a Kafka record batch could not be decoded: ${e.message}`,
      {
        cause: e,
      },
    )
  }
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

/** Codes of a decoding failure: the client's codec errors, zlib's, a read past a buffer's end. */
const UNDECODABLE =
  /^(PLT_KFK_UNSUPPORTED_COMPRESSION|PLT_KFK_UNSUPPORTED_FORMAT|Z_\w+|ERR_OUT_OF_RANGE|ERR_BUFFER_OUT_OF_BOUNDS)$/

/**
 * 'authentication' when Kafka refused the login, the protocol error's code when it denied an
 * operation (`TOPIC_AUTHORIZATION_FAILED`, …), else undefined.
 */
export function kafkaRefusal(error: unknown): string | undefined {
  const codes = kafkaCodes(error)
  if (codes.has('PLT_KFK_AUTHENTICATION') || codes.has('SASL_AUTHENTICATION_FAILED')) return 'authentication'
  return [...codes].find((c) => c.endsWith('_AUTHORIZATION_FAILED'))
}

/**
 * Every `code` and protocol error name (`apiId`, e.g. `TOPIC_AUTHORIZATION_FAILED`) in a Kafka client error: the client wraps what the broker
 * said in MultipleErrors and causes, so the whole tree is walked.
 */
export function kafkaCodes(error: unknown, into = new Set<string>(), depth = 0): Set<string> {
  if (!error || typeof error !== 'object' || depth > 8) return into
  const e = error as { code?: unknown; apiId?: unknown; errors?: unknown; cause?: unknown }
  for (const c of [e.code, e.apiId]) if (typeof c === 'string') into.add(c)
  for (const inner of [...(Array.isArray(e.errors) ? e.errors : []), e.cause])
    kafkaCodes(inner, into, depth + 1)
  return into
}
