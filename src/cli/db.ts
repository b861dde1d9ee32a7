import type { Command } from 'commander'
import { configOf, SETTINGS, withPool, withSettings } from './options.ts'

/** `db migrate`, `maintain` and `roles`. */
export function dbCommands(program: Command): void {
  const db = program.command('db').description('the database')
  withSettings(
    db
      .command('migrate')
      .description('apply the SQL migrations not yet applied, and the catalog file when it changed'),
    [...SETTINGS.DB, 'catalog'],
  ).action(async (_o, cmd: Command) => {
    const config = await configOf(cmd, ['database'])
    const { migrate } = await import('../db/index.ts')
    const applied = await withPool(config, (pool) => migrate(pool, { catalog: config.catalog }))
    process.stdout.write(`${JSON.stringify({ applied })}\n`)
  })
  withSettings(
    db
      .command('maintain')
      .description("create the coming days' partitions, apply the retention, refresh statistics"),
    SETTINGS.MAINTAIN,
  ).action(async (_o, cmd: Command) => {
    const config = await configOf(cmd, ['database'])
    const { maintain } = await import('../db/index.ts')
    const summary = await withPool(config, (pool) => maintain(pool, config.retentionDays), {
      max: 1,
      statementTimeoutMs: 0,
    })
    process.stdout.write(`${JSON.stringify(summary)}\n`)
  })
  withSettings(
    db
      .command('roles')
      .description(
        'give the evf_etl, evf_api and evf_bi roles a login (passwords kept in <data-dir>/db-roles.json) and print their URLs',
      ),
    [...SETTINGS.DB, 'dataDir'],
  ).action(async (_o, cmd: Command) => {
    const config = await configOf(cmd, ['database'])
    const { provisionRoleLogins } = await import('../services/index.ts')
    process.stdout.write(
      `${JSON.stringify(await provisionRoleLogins(config.databaseUrl, config.dataDir), null, 2)}\n`,
    )
  })
}
