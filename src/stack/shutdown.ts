import type { Logger } from '../shared/log.ts'

/** What ends a stack: a component that died (its exit code), or an error of its start-up. */
export type Failure = { component: string; exitCode: number } | { error: unknown }

/**
 * How the stack stops, and with what. `stop(reason)` runs `steps` once, whoever asks first
 * (Ctrl-C, a component that died, a start-up step that failed); `fail` is a stop with a failure.
 * The stack ends with the failure that started the stop: what fails afterwards — a start-up step
 * whose services are being stopped, or the stop itself — is its consequence, and is logged, never
 * reported in its place (a busy API port once ended as "PostgreSQL unreachable", exit 4).
 */
export function orderedShutdown(log: Logger, steps: () => Promise<void>) {
  let stopping: Promise<void> | undefined
  let first: Failure | undefined
  let resolveRequested: () => void = () => undefined
  const requested = new Promise<void>((resolve) => {
    resolveRequested = resolve
  })
  const stop = (reason: string): Promise<void> => {
    if (!stopping) {
      log.info({ reason }, 'stopping the stack')
      stopping = steps().catch((error: unknown) => {
        log.error({ err: String(error) }, 'the stack did not stop cleanly')
      })
      resolveRequested()
    }
    return stopping
  }
  const fail = (failure: Failure, reason: string): Promise<void> => {
    if (stopping) {
      const err =
        'error' in failure ? String(failure.error) : `${failure.component} exited with ${failure.exitCode}`
      log.warn({ err, reason }, 'failed while the stack was stopping (not the cause)')
    } else first = failure
    return stop(reason)
  }
  /**
   * Once stopped: the exit code of the component that died first, or 0; a start-up error that
   * came first is thrown, for the CLI to report with its own code.
   */
  const outcome = async (): Promise<number> => {
    await requested
    await stopping
    if (first === undefined) return 0
    if ('error' in first) throw first.error
    return first.exitCode
  }
  return { stop, fail, outcome, stopping: () => stopping !== undefined, requested }
}
