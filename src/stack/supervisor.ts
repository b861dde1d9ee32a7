import type { Logger } from '../shared/log.ts'
import { Supervisor } from '../shared/supervisor.ts'

export { cliPath, Supervisor } from '../shared/supervisor.ts'

/**
 * The stack's supervisor (`shared/supervisor.ts`): each component's pino lines are shown in a
 * compact form (`formatLine`) and kept raw in `<logsDir>/<name>.log`. Components run under the
 * `stop` policy unless started with another: one that dies is reported (code and last lines)
 * and `onFailure` stops the stack.
 */
export function stackSupervisor(
  logsDir: string,
  log: Logger,
  onFailure: (name: string, code: number | null) => void,
  print: (line: string) => void = (line) => process.stdout.write(`${line}\n`),
): Supervisor {
  return new Supervisor({ log, logsDir, onFailure, print: (name, line) => print(formatLine(name, line)) })
}

const LEVELS: Record<number, string> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
}

/** `{"level":30,"time":…,"msg":"x","k":1}` → `12:00:01 etl      info  x k=1` */
export function formatLine(name: string, line: string): string {
  let entry: Record<string, unknown>
  try {
    entry = JSON.parse(line)
  } catch {
    return `${name.padEnd(9)} ${line}`
  }
  const { level, time, msg, pid: _pid, name: _name, hostname: _host, ...rest } = entry
  const when = typeof time === 'number' ? new Date(time).toISOString().slice(11, 19) : ''
  const extra = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ')
  return `${when} ${name.padEnd(9)} ${(LEVELS[Number(level)] ?? String(level)).padEnd(5)} ${msg ?? ''} ${extra}`.trimEnd()
}
