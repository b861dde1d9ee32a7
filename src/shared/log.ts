import { type Logger, pino } from 'pino'

export type { Logger }

/**
 * One structured logger per process, named after the component: JSON lines on stderr, so that
 * stdout stays free for a command's result (`etl run` prints its JSON summary there). `stack up`
 * formats its children's lines and keeps the raw ones under `<dataDir>/logs/`.
 */
export function createLogger(
  component: string,
  level = process.env.EVF_LOG_LEVEL ?? 'info',
  destination: pino.DestinationStream = pino.destination({ fd: 2, sync: false }),
): Logger {
  return pino({ name: component, level, base: { pid: process.pid } }, destination)
}
