import type { Command } from 'commander'
import { createLogger } from '../shared/log.ts'
import { configOf, SETTINGS, untilSignal, withSettings } from './options.ts'

export function ingestCommand(program: Command): void {
  withSettings(
    program
      .command('ingest')
      .description('bring readings from MQTT, Sparkplug B and OPC UA devices into Kafka (docs/devices.md)'),
    SETTINGS.INGEST,
  ).action(async (_o, cmd: Command) => {
    const config = await configOf(cmd, ['kafka', 'database'], 'ingest')
    const { runIngest } = await import('../ingest/index.ts')
    await runIngest(config, createLogger('ingest', config.logLevel), untilSignal())
  })
}
