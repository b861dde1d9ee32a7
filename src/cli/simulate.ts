import type { Command } from 'commander'
import { createLogger } from '../shared/log.ts'
import { configOf, SETTINGS, untilSignal, withSettings } from './options.ts'

export function simulateCommand(program: Command): void {
  withSettings(
    program.command('simulate').description('produce sensor readings to Kafka'),
    SETTINGS.SIM,
  ).action(async (_o, cmd: Command) => {
    const fromDb = cmd.opts().simCatalogFrom === 'database' || process.env.EVF_SIM_CATALOG_FROM === 'database'
    const transport = cmd.opts().simTransport ?? process.env.EVF_SIM_TRANSPORT ?? 'kafka'
    // Playing the devices, it talks to their broker or serves them itself: no Kafka.
    const needs = [
      ...(transport === 'kafka' ? (['kafka'] as const) : []),
      ...(fromDb ? (['database'] as const) : []),
    ]
    const config = await configOf(cmd, needs, 'simulator')
    const { runSimulator } = await import('../simulator/index.ts')
    const summary = await runSimulator(config, createLogger('simulator', config.logLevel), untilSignal())
    if (config.simCount > 0) process.stdout.write(`${JSON.stringify(summary)}\n`)
  })
}
