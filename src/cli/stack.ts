import type { Command } from 'commander'
import { createLogger } from '../shared/log.ts'
import { configOf, SETTINGS, withSettings } from './options.ts'

export function stackCommands(program: Command): void {
  const stack = program.command('stack').description('the whole pipeline')
  withSettings(
    stack.command('up').description('start Kafka, PostgreSQL, the ETL, the API and the simulator'),
    SETTINGS.ALL,
  ).action(async (_o, cmd: Command) => {
    const config = await configOf(cmd)
    const { formatLine, stackUp } = await import('../stack/index.ts')
    // The stack's own lines are shown like its children's: compact, for a person at a terminal.
    const pretty = {
      write: (line: string) => process.stdout.write(`${formatLine('stack', line.trimEnd())}\n`),
    }
    process.exitCode = await stackUp(config, createLogger('stack', config.logLevel, pretty))
  })
}
