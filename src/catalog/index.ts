/**
 * The plant as data (docs/catalog.md): the catalog file's schema and rules, the compiled Catalog
 * every stage asks, and the message format readings travel in. A process gets its Catalog from
 * the database (the applied version, followed live) or, without one, from the file.
 */
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Catalog } from './model.ts'
import { readCatalogFile } from './validate.ts'

export { type CatalogDiff, diffCatalogs, isEmptyDiff } from './diff.ts'
export type {
  CatalogDocument,
  Measurement as MeasurementDefinition,
  MqttSource,
  OpcuaSource,
  Source,
  SparkplugSource,
  Station as StationDefinition,
} from './document.ts'
export { catalogJsonSchema } from './document.ts'
export { MESSAGE_HEADERS, type SensorMessage, type SourceRecord } from './message.ts'
export type {
  CatalogHistory,
  Inspection,
  Measurement,
  NumericMeasurement,
  SpecVersion,
  Station,
} from './model.ts'
export { Catalog, specAt } from './model.ts'
export type { CatalogProblem } from './validate.ts'
export { checkCatalog, checkCatalogText, describeProblems, readCatalogFile } from './validate.ts'

/** `catalog/plant.yaml` of the project: the four stations of the reference plant. */
export const DEFAULT_CATALOG = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  'catalog',
  'plant.yaml',
)

/** The catalog of a file, checked (CONFIG_INVALID listing every problem otherwise). */
export function catalogFromFile(path: string = DEFAULT_CATALOG): Catalog {
  return new Catalog(readCatalogFile(path))
}
