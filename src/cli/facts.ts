import type { Command } from 'commander'
import { configOf, SETTINGS, withSettings } from './options.ts'

/** What evf tells people and other programs: the effective settings (the catalog is cli/catalog.ts). */
export function factCommands(program: Command): void {
  withSettings(
    program.command('config').description('print the effective settings as JSON (passwords masked)'),
    SETTINGS.ALL,
  ).action(async (_o, cmd: Command) => {
    const { maskSecrets } = await import('../shared/redact.ts')
    process.stdout.write(`${JSON.stringify(maskSecrets(await configOf(cmd)), null, 2)}\n`)
  })
}
