import type { Command } from 'commander'
import type { Catalog } from '../catalog/index.ts'
import type { Config } from '../config/index.ts'
import { PipelineError } from '../errors/index.ts'
import { createLogger } from '../shared/log.ts'
import { configOf, SETTINGS, withPool, withSettings } from './options.ts'

/** `catalog` (what is in force), `catalog validate`, `catalog apply`, `catalog schema` (docs/catalog.md). */
export function catalogCommands(program: Command): void {
  // Catalog facts for people and for programs that are not TypeScript (the Airflow DAG asks at parse time).
  const catalog = withSettings(
    program
      .command('catalog')
      .description('print the catalog in force: its stations, their measurements and their topics')
      .option(
        '--json',
        'one JSON object: {version, topicPrefix, topics, stations: [{name, title, topic, line, fields}]}',
      ),
    SETTINGS.CATALOG,
  ).action(show)
  catalog
    .command('validate')
    .description('check catalog files; exit 2 listing every problem of a bad one')
    .argument('<file...>', 'catalog files (YAML or JSON)')
    .action(validate)
  withSettings(
    catalog
      .command('apply')
      .description(
        'apply a catalog file as the next version: prints the diff; followed live by every component',
      )
      .argument('<file>', 'the catalog file')
      .option('--dry-run', 'print the diff, change nothing')
      .option('--no-topics', 'do not create the new stations’ Kafka topics (create them yourself)'),
    [...new Set([...SETTINGS.CATALOG, ...SETTINGS.KAFKA])],
  ).action(apply)
  catalog
    .command('schema')
    .description('print the JSON Schema of catalog files (catalog/catalog.schema.json)')
    .action(async () => {
      const { catalogJsonSchema } = await import('../catalog/index.ts')
      process.stdout.write(`${JSON.stringify(catalogJsonSchema(), null, 2)}\n`)
    })
}

/** The applied catalog when a database is configured or a stack runs; the file otherwise. */
async function inForce(cmd: Command): Promise<{ config: Config; catalog: Catalog; from: string }> {
  const { catalogFromFile } = await import('../catalog/index.ts')
  let config = await configOf(cmd)
  try {
    config = await configOf(cmd, ['database'])
  } catch {
    return { config, catalog: catalogFromFile(config.catalog), from: config.catalog }
  }
  const { loadCatalog } = await import('../db/index.ts')
  const applied = await withPool(config, loadCatalog).catch((error: unknown) => {
    // PostgreSQL away: the file is what the next start applies; say so rather than fail.
    process.stderr.write(
      `evf: the database did not answer (${String(error)}): the catalog of ${config.catalog}\n`,
    )
    return undefined
  })
  if (applied) return { config, catalog: applied, from: `the database (version ${applied.version})` }
  return { config, catalog: catalogFromFile(config.catalog), from: config.catalog }
}

async function show(o: { json?: boolean }, cmd: Command): Promise<void> {
  const { config, catalog, from } = await inForce(cmd)
  const prefix = config.topicPrefix
  const list = catalog.stations.map((s) => ({
    name: s.id,
    title: s.name,
    topic: catalog.topicOf(s, prefix),
    line: s.line.id,
    // The simulator's model is not a fact about the plant.
    fields: Object.fromEntries(
      s.measurements.map(({ simulation: _s, name, numeric: _n, limits: _l, ...fact }) => [name, fact]),
    ),
  }))
  if (o.json) {
    const topics = list.map((s) => s.topic)
    process.stdout.write(
      `${JSON.stringify({ version: catalog.version, topicPrefix: prefix, topics, stations: list })}\n`,
    )
    return
  }
  process.stdout.write(`# catalog from ${from}\n`)
  const width = Math.max(...list.map((s) => s.name.length))
  const topicWidth = Math.max(...list.map((s) => s.topic.length))
  for (const s of catalog.stations) {
    const fields = s.measurements.map((m) =>
      m.numeric && 'unit' in m ? `${m.name} (${m.symbol ?? m.unit})` : m.name,
    )
    const topic = catalog.topicOf(s, prefix)
    process.stdout.write(`${s.id.padEnd(width)} ${topic.padEnd(topicWidth)} ${fields.join(', ')}\n`)
  }
}

async function validate(files: string[]): Promise<void> {
  const { checkCatalogText, describeProblems, Catalog } = await import('../catalog/index.ts')
  const { readFileSync } = await import('node:fs')
  const bad: string[] = []
  for (const file of files) {
    let text: string
    try {
      text = readFileSync(file, 'utf8')
    } catch (error) {
      bad.push(`catalog ${file} cannot be read: ${(error as Error).message}`)
      continue
    }
    const check = checkCatalogText(text)
    if (!check.ok) {
      bad.push(describeProblems(file, check.problems))
      continue
    }
    const c = new Catalog(check.document)
    const measurements = c.stations.reduce((n, s) => n + s.measurements.length, 0)
    process.stdout.write(`${file}: valid (${c.stations.length} stations, ${measurements} measurements)\n`)
  }
  if (bad.length > 0) throw new PipelineError('CONFIG_INVALID', bad.join('\n'))
}

async function apply(file: string, o: { dryRun?: boolean; topics: boolean }, cmd: Command): Promise<void> {
  const { resolve } = await import('node:path')
  const { readCatalogFile, Catalog } = await import('../catalog/index.ts')
  const path = resolve(file)
  const document = readCatalogFile(path)
  const config = await configOf(cmd, o.topics && !o.dryRun ? ['database', 'kafka'] : ['database'], 'admin')
  const log = createLogger('catalog', config.logLevel)
  const db = await import('../db/index.ts')
  if (o.topics && !o.dryRun) {
    // The new stations' topics first, as admin: once the version commits, the simulator writes
    // to them and the ETL subscribes to them. Creating one that exists changes nothing.
    const { createAdmin, ensureTopics } = await import('../kafka/index.ts')
    const admin = createAdmin(config, 'evf-catalog-admin')
    try {
      const topics = new Catalog(document).topicsOf(config.topicPrefix)
      await ensureTopics(admin, topics, config.topicPartitions, log, config.kafkaUsername)
    } finally {
      await admin.close()
    }
  }
  const result = await withPool(config, (pool) =>
    db.withClient(pool, (client) => db.applyCatalog(client, document, { source: path, dryRun: o.dryRun })),
  )
  const d = result.diff
  const lines = [
    ...d.added.map((s) => `+ station ${s}`),
    ...d.retired.map((s) => `- station ${s} (retired: its history stays)`),
    ...d.changed.flatMap((c) => c.changes.map((x) => `~ ${c.station}: ${x}`)),
    ...d.limits.map(
      (l) =>
        `~ ${l.station}.${l.measurement} limits from now: lsl ${l.lsl ?? '—'}, target ${l.target ?? '—'}, usl ${l.usl ?? '—'}`,
    ),
    ...d.other.map((x) => `~ ${x}`),
  ]
  const head = o.dryRun
    ? 'dry run: nothing applied'
    : result.changed
      ? `applied as catalog version ${result.version}`
      : `unchanged: version ${result.version} is this catalog`
  process.stdout.write(`${lines.join('\n')}${lines.length ? '\n' : ''}${head}\n`)
}
