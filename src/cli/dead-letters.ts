import type { Command } from 'commander'
import { PipelineError } from '../errors/index.ts'
import { configOf, SETTINGS, withPool, withSettings } from './options.ts'

interface FilterFlags {
  id?: string[]
  reason?: string
  topic?: string
  limit?: number
  all?: boolean
  json?: boolean
}

const filterOptions = (cmd: Command) =>
  cmd
    .option('--id <id...>', 'only these dead letters')
    .option('--reason <code>', 'only this reason code (e.g. WRONG_TYPE)')
    .option('--topic <topic>', 'only this topic')
    .option('--limit <n>', 'at most this many', (v) => Number(v))

const filterOf = (o: FilterFlags) => ({
  ids: o.id?.map(Number),
  reason: o.reason,
  topic: o.topic,
  limit: o.limit,
  includeResolved: o.all,
})

/** `etl dead-letters list` and `retry`. */
export function deadLetterCommands(etl: Command): void {
  const deadLetters = etl
    .command('dead-letters')
    .description('messages the ETL could not load, kept with their raw bytes')
  withSettings(
    filterOptions(deadLetters.command('list').description('list dead letters, newest first'))
      .option('--all', 'include the ones already re-driven')
      .option('--json', 'one JSON object per line'),
    SETTINGS.DB,
  ).action(list)
  withSettings(
    filterOptions(
      deadLetters
        .command('retry')
        .description("validate chosen dead letters again with today's rules and load the ones that pass"),
    ),
    SETTINGS.ETL,
  ).action(retry)
}

async function list(o: FilterFlags, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const { listDeadLetters } = await import('../db/index.ts')
  await withPool(config, async (pool) => {
    const rows = await listDeadLetters(pool, filterOf(o))
    for (const r of rows) {
      process.stdout.write(
        o.json
          ? `${JSON.stringify(r)}\n`
          : `#${r.id}  ${r.topic}[${r.partition}]@${r.offset}  ${r.reason_code}  ${r.reason}\n    ${r.value_bytes} B: ${r.value_preview}\n`,
      )
    }
    if (!o.json) process.stderr.write(`${rows.length} dead letter(s)\n`)
  })
}

async function retry(o: FilterFlags, cmd: Command): Promise<void> {
  if (!o.id && !o.reason && !o.topic)
    throw new PipelineError('CONFIG_INVALID', 'choose what to retry: --id, --reason or --topic')
  const config = await configOf(cmd, ['database'])
  const { retryDeadLetters } = await import('../etl/index.ts')
  await withPool(config, async (pool) => {
    process.stdout.write(`${JSON.stringify(await retryDeadLetters(config, pool, filterOf(o)))}\n`)
  })
}
