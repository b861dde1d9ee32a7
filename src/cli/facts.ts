import type { Command } from 'commander'
import { configOf, SETTINGS, withSettings } from './options.ts'

/** What evf tells people and other programs: the effective settings and the catalog. */
export function factCommands(program: Command): void {
  withSettings(
    program.command('config').description('print the effective settings as JSON (passwords masked)'),
    SETTINGS.ALL,
  ).action(async (_o, cmd: Command) => {
    const { maskSecrets } = await import('../shared/redact.ts')
    process.stdout.write(`${JSON.stringify(maskSecrets(await configOf(cmd)), null, 2)}\n`)
  })
  // Catalog facts for programs that are not TypeScript (the Airflow DAG asks at parse time).
  withSettings(
    program
      .command('catalog')
      .description('print the stations, their measurements and their topics')
      .option('--json', 'one JSON object: {topicPrefix, topics, stations: [{name, title, topic, fields}]}'),
    ['topicPrefix'],
  ).action(catalog)
}

async function catalog(o: { json?: boolean }, cmd: Command): Promise<void> {
  const { topicPrefix } = await configOf(cmd)
  const { stations, stationNames, topicFor } = await import('../catalog/index.ts')
  const list = stationNames.map((name) => ({
    name,
    title: stations[name].title,
    topic: topicFor(name, topicPrefix),
    // The simulator's model is not a fact about the plant.
    fields: Object.fromEntries(
      Object.entries(stations[name].fields).map(([field, { sim: _sim, ...fact }]) => [field, fact]),
    ),
  }))
  if (o.json) {
    const topics = list.map((s) => s.topic)
    process.stdout.write(`${JSON.stringify({ topicPrefix, topics, stations: list })}\n`)
    return
  }
  for (const s of list) {
    const fields = Object.entries(s.fields).map(([f, { unit }]) => (unit ? `${f} (${unit})` : f))
    process.stdout.write(
      `${s.name.padEnd(9)} ${s.topic.padEnd(topicPrefix.length + 9)} ${fields.join(', ')}\n`,
    )
  }
}
