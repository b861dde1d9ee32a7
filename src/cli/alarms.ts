import { userInfo } from 'node:os'
import type { Command } from 'commander'
import { PipelineError } from '../errors/index.ts'
import { createLogger } from '../shared/log.ts'
import { configOf, SETTINGS, untilSignal, withPool, withSettings } from './options.ts'

/** `alarms` (what is not normal), `history`, `ack`, `shelve`, `rules …`, `silence`, `run` (docs/alarms.md). */
export function alarmCommands(program: Command): void {
  const alarms = withSettings(
    program.command('alarms').description('alarms not normal, most severe first (--all: every alarm)'),
    SETTINGS.DB,
  )
    .option('--all', 'every alarm, normal ones too')
    .option('--json', 'a JSON array')
    .action(async (o: { all?: boolean; json?: boolean }, cmd: Command) => {
      const { listAlarms } = await import('../db/index.ts')
      const states = o.all ? undefined : ['UNACK', 'ACKED', 'RTNUN', 'SHELVED', 'OUT_OF_SERVICE']
      print(await db(cmd, (pool) => listAlarms(pool, states)), o.json)
    })
  withSettings(alarms.command('history').description('transitions, newest first'), SETTINGS.DB)
    .option('--station <id>', 'one station')
    .option('--limit <n>', 'how many', '50')
    .option('--json', 'a JSON array')
    .action(async (o: { station?: string; limit: string; json?: boolean }, cmd: Command) => {
      const { alarmHistory } = await import('../db/index.ts')
      print(
        await db(cmd, (pool) => alarmHistory(pool, { station: o.station, limit: Number(o.limit) })),
        o.json,
      )
    })
  actionCommands(alarms)
  ruleCommands(alarms)
  silenceCommands(alarms)
  runCommand(alarms)
}

function actionCommands(alarms: Command): void {
  for (const action of [
    'acknowledge',
    'shelve',
    'unshelve',
    'out-of-service',
    'return-to-service',
  ] as const) {
    const c = withSettings(
      alarms.command(action).description(`${action} an alarm, recorded with who and why`),
      SETTINGS.DB,
    )
      .argument('<rule>', 'the rule id (evf alarms rules)')
      .option('--subject <sensor>', 'the sensor, for a rule over a station’s sensors (stale)')
      .requiredOption('--comment <text>', 'why (kept in the history)')
    if (action === 'shelve') c.requiredOption('--minutes <n>', 'how long until the shelve expires')
    c.action(
      async (rule: string, o: { subject?: string; comment: string; minutes?: string }, cmd: Command) => {
        const { act } = await import('../alarms/index.ts')
        const { listRules } = await import('../db/index.ts')
        const result = await db(cmd, async (pool) => {
          const row = (await listRules(pool)).find((r) => r.id === rule)
          if (!row)
            throw new PipelineError('CONFIG_INVALID', `no alarm rule "${rule}" (evf alarms rules lists them)`)
          const until = o.minutes === undefined ? undefined : Date.now() + Number(o.minutes) * 60_000
          return act(pool, row, {
            rule,
            subject: o.subject,
            action,
            by: `cli:${userInfo().username}`,
            comment: o.comment,
            until,
          })
        })
        process.stdout.write(`${rule}: ${result.from} → ${result.to}\n`)
      },
    )
  }
}

function runCommand(alarms: Command): void {
  withSettings(
    alarms
      .command('run')
      .description(
        'evaluate alarms and deliver notifications here (when the API does not: EVF_ALARM_EVALUATOR=off)',
      ),
    SETTINGS.ALARMS,
  ).action(async (_o: unknown, cmd: Command) => {
    const config = await configOf(cmd, ['database'])
    const { startAlarms } = await import('../alarms/index.ts')
    const { CatalogFollower, createPool, loadCatalog } = await import('../db/index.ts')
    const { catalogFromFile } = await import('../catalog/index.ts')
    const log = createLogger('alarms', config.logLevel)
    const pool = createPool(config.databaseUrl, { max: 4, application: 'evf-alarms' })
    const follower = new CatalogFollower(
      pool,
      (await loadCatalog(pool)) ?? catalogFromFile(config.catalog),
      (c) => {
        void alarms.evaluator.catalogChanged(c)
      },
      log,
    )
    const alarms = startAlarms(config, { pool, log, catalog: () => follower.catalog })
    const signal = untilSignal()
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }))
    await alarms.close()
    await follower.close()
    await pool.end()
  })
}

function ruleCommands(alarms: Command): void {
  const rules = withSettings(alarms.command('rules').description('the alarm rules'), SETTINGS.DB)
    .option('--json', 'a JSON array')
    .action(async (o: { json?: boolean }, cmd: Command) => {
      const { listRules } = await import('../db/index.ts')
      print(await db(cmd, listRules), o.json)
    })
  withSettings(
    rules.command('set').description('add or change a rule (checked against its kind and the catalog)'),
    SETTINGS.CATALOG,
  )
    .argument(
      '<json>',
      'the rule: {"kind":"spc","station":"paint","measurement":"booth_temp","params":{"we":["WE1"]},…}',
    )
    .action(async (json: string, _o: unknown, cmd: Command) => {
      const { checkRule, RuleError } = await import('../alarms/index.ts')
      const { loadCatalog, putRule } = await import('../db/index.ts')
      const saved = await db(cmd, async (pool) => {
        const catalog = await loadCatalog(pool)
        if (!catalog)
          throw new PipelineError('CONFIG_INVALID', 'no catalog is applied: run `evf db migrate` first')
        try {
          return await putRule(pool, checkRule(JSON.parse(json), catalog), `cli:${userInfo().username}`)
        } catch (error) {
          if (error instanceof RuleError || error instanceof SyntaxError)
            throw new PipelineError('CONFIG_INVALID', `rule: ${error.message}`)
          throw error
        }
      })
      print([saved], false)
    })
  withSettings(
    rules.command('delete').description('delete a rule and its alarms (the history stays)'),
    SETTINGS.DB,
  )
    .argument('<id>')
    .action(async (id: string, _o: unknown, cmd: Command) => {
      const { deleteRule } = await import('../db/index.ts')
      if (!(await db(cmd, (pool) => deleteRule(pool, id))))
        throw new PipelineError('CONFIG_INVALID', `no alarm rule "${id}"`)
    })
}

function silenceCommands(alarms: Command): void {
  withSettings(
    alarms
      .command('silence')
      .description(
        'silence notices (recorded, not sent) until an expiry; a later --from makes a maintenance window',
      ),
    SETTINGS.DB,
  )
    .option('--station <ids>', 'comma-separated stations')
    .option('--rule <ids>', 'comma-separated rule ids')
    .option('--severity <list>', 'comma-separated severities')
    .option('--from <iso>', 'when it starts (default now)')
    .requiredOption('--minutes <n>', 'how long it lasts')
    .requiredOption('--comment <text>', 'why')
    .action(
      async (
        o: {
          station?: string
          rule?: string
          severity?: string
          from?: string
          minutes: string
          comment: string
        },
        cmd: Command,
      ) => {
        const { addSilence } = await import('../db/index.ts')
        const { randomUUID } = await import('node:crypto')
        const starts = o.from ? new Date(o.from) : new Date()
        if (Number.isNaN(starts.getTime()))
          throw new PipelineError('CONFIG_INVALID', `--from: "${o.from}" is not a date`)
        const list = (v?: string) => v?.split(',').filter(Boolean) ?? []
        const s = await db(cmd, (pool) =>
          addSilence(pool, {
            id: randomUUID(),
            stations: list(o.station),
            measurements: [],
            severities: list(o.severity),
            rules: list(o.rule),
            starts_at: starts,
            ends_at: new Date(starts.getTime() + Number(o.minutes) * 60_000),
            created_by: `cli:${userInfo().username}`,
            comment: o.comment,
          }),
        )
        print([s], false)
      },
    )
}

async function db<T>(cmd: Command, fn: (pool: import('../db/index.ts').Pool) => Promise<T>): Promise<T> {
  return withPool(await configOf(cmd, ['database']), fn)
}

function print(rows: readonly object[], json: boolean | undefined): void {
  if (json) process.stdout.write(`${JSON.stringify(rows)}\n`)
  else if (rows.length === 0) process.stdout.write('(none)\n')
  else console.table(rows)
}
