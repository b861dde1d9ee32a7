import { Command } from 'commander'
import { classify, PipelineError } from '../errors/index.ts'
import { alarmCommands } from './alarms.ts'
import { apiCommand } from './api.ts'
import { catalogCommands } from './catalog.ts'
import { dbCommands } from './db.ts'
import { etlCommands } from './etl.ts'
import { factCommands } from './facts.ts'
import { ingestCommand } from './ingest.ts'
import { simulateCommand } from './simulate.ts'
import { stackCommands } from './stack.ts'
import { tlsCommands } from './tls.ts'
import { tokenCommands } from './tokens.ts'

/**
 * `evf`: one file per command group; each loads the stages it needs when it runs (the Kafka client
 * alone takes a second to load). `entry` is this CLI's entry file, which ETL worker processes run.
 * Any failure ends the process with its error code's exit code.
 */
export function main(entry: string): void {
  const program = new Command('evf')
    .description('EV factory sensor pipeline: simulator → Kafka → ETL → PostgreSQL → API')
    .showHelpAfterError()
  // In the order `evf --help` lists them.
  stackCommands(program)
  simulateCommand(program)
  ingestCommand(program)
  etlCommands(program, entry)
  apiCommand(program)
  tokenCommands(program)
  tlsCommands(program)
  dbCommands(program)
  factCommands(program)
  catalogCommands(program)
  alarmCommands(program)
  program.parseAsync().catch((error: unknown) => {
    const e = error instanceof PipelineError ? error : classify(error)
    process.stderr.write(`evf: ${e.code}: ${e.message}\n`)
    process.exit(e.exitCode)
  })
}
