import type pg from 'pg'
import { type Field, fieldEntries, inspection, stationNames, stations } from '../../catalog/index.ts'

/**
 * What the catalog puts in the database, re-applied after every migration run (a "repeatable"
 * step, like Flyway's R__ scripts): the `catalog_fields` table and the typed BI views in schema
 * `bi`. Both derive from src/catalog, so a new field reaches Tableau without a hand-written view.
 */

/** Column-name suffix for a unit: ASCII, lower case, unambiguous (MΩ is not mΩ). */
const UNIT_SUFFIX: Record<string, string> = {
  N·m: 'nm',
  kA: 'ka',
  mm: 'mm',
  V: 'v',
  '°C': 'degc',
  MΩ: 'megohm',
  '%RH': 'pct_rh',
  mil: 'mil',
  defects: '',
  '': '',
}

/** The BI column for a measurement: its name with its unit, e.g. bolt_torque_nm. */
export function biColumn(field: string, f: Field): string {
  const suffix = UNIT_SUFFIX[f.unit]
  if (suffix === undefined)
    throw new Error(`unit "${f.unit}" of ${field} has no column suffix in UNIT_SUFFIX`)
  return suffix && !field.endsWith(`_${suffix}`) ? `${field}_${suffix}` : field
}

const ident = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a safe SQL identifier: ${name}`)
  return `"${name}"`
}
const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`

function readingsView(station: (typeof stationNames)[number]): string {
  const cols = [
    'id',
    'station',
    'reading_time',
    `(data->>'processed_at')::timestamptz AS processed_at`,
    'created_at AS loaded_at',
    `data->>'sensor_id' AS sensor_id`,
  ]
  const comments: string[] = []
  const view = `bi.${ident(`${station}_readings`)}`
  for (const [name, f] of fieldEntries(station)) {
    const col = biColumn(name, f)
    const value = `data->${literal(name)}`
    if (f.kind === 'enum') {
      cols.push(`(${value} #>> '{}') AS ${ident(col)}`)
      comments.push(
        `COMMENT ON COLUMN ${view}.${ident(col)} IS ${literal(`${f.description}: ${f.values.join(', ')}`)}`,
      )
      continue
    }
    const type = f.kind === 'integer' ? 'integer' : `numeric(14, ${f.precision})`
    cols.push(`(${value})::${type} AS ${ident(col)}`)
    cols.push(
      `(${value})::double precision BETWEEN ${f.spec[0]} AND ${f.spec[1]} AS ${ident(`${name}_in_spec`)}`,
    )
    const unit = f.unit ? ` [${f.unit}]` : ''
    comments.push(
      `COMMENT ON COLUMN ${view}.${ident(col)} IS ${literal(`${f.description}${unit}; specification ${f.spec[0]}…${f.spec[1]}`)}`,
      `COMMENT ON COLUMN ${view}.${ident(`${name}_in_spec`)} IS ${literal(`${col} within its specification limits ${f.spec[0]}…${f.spec[1]}${unit}`)}`,
    )
  }
  cols.push(`NOT (data ? 'out_of_spec') AS all_in_spec`)
  return [
    `CREATE VIEW ${view} AS SELECT ${cols.join(',\n  ')}\nFROM public.sensor_data WHERE station = ${literal(station)}`,
    `COMMENT ON VIEW ${view} IS ${literal(`${stations[station].title}: one row per reading, one typed column per measurement (units in the names and comments).`)}`,
    ...comments,
  ].join(';\n')
}

function rollupView(width: '1m' | '1h'): string {
  const view = `bi.${ident(`rollup_${width}`)}`
  return `CREATE VIEW ${view} AS
SELECT r.station, r.field, f.unit, r.bucket, r.n AS readings, r.min, r.max,
       r.sum / r.n AS mean,
       CASE WHEN r.n > 1 THEN sqrt(greatest((r.sumsq - r.sum * r.sum / r.n) / (r.n - 1), 0)) END AS stddev,
       f.spec_min, f.spec_max
FROM public.rollup_${width} r JOIN public.catalog_fields f USING (station, field)
WHERE f.kind <> 'enum';
COMMENT ON VIEW ${view} IS ${literal(`Per station, numeric measurement and ${width === '1m' ? 'minute' : 'hour'} of reading time: count, min, max, mean, sample standard deviation.`)}`
}

const viewsSql = (): string =>
  [
    'DROP SCHEMA IF EXISTS bi CASCADE',
    'CREATE SCHEMA bi',
    `COMMENT ON SCHEMA bi IS 'Typed views for BI tools (Tableau, Metabase, Excel): one column per measurement.'`,
    ...stationNames.map(readingsView),
    rollupView('1m'),
    rollupView('1h'),
    `CREATE VIEW bi.quality_results_1h AS
SELECT bucket, category AS result, n AS inspections FROM public.rollup_1h
WHERE station = ${literal(inspection.station)} AND field = ${literal(inspection.field)}`,
    `COMMENT ON VIEW bi.quality_results_1h IS ${literal(`Inspections per hour and result (${inspection.results.join(', ')}).`)}`,
    `CREATE VIEW bi.catalog_fields AS SELECT * FROM public.catalog_fields`,
    `COMMENT ON VIEW bi.catalog_fields IS 'Every measurement of every station: unit, specification and plausible limits.'`,
    'GRANT USAGE ON SCHEMA bi TO evf_bi, evf_api',
    'GRANT SELECT ON ALL TABLES IN SCHEMA bi TO evf_bi, evf_api',
  ].join(';\n')

/** Rows of `catalog_fields`, in catalog order. */
function catalogRows(): unknown[][] {
  return stationNames.flatMap((station) =>
    fieldEntries(station).map(([field, f], position) =>
      f.kind === 'enum'
        ? [station, field, position, f.kind, f.unit, f.description, null, null, null, null]
        : [station, field, position, f.kind, f.unit, f.description, ...f.spec, ...f.plausible],
    ),
  )
}

/** Re-applies the catalog's tables and views; `client` is inside a transaction. */
export async function applyCatalog(client: pg.PoolClient): Promise<void> {
  await client.query('DELETE FROM catalog_fields')
  const rows = catalogRows()
  const columns = (i: number) => rows.map((r) => r[i])
  await client.query(
    `INSERT INTO catalog_fields (station, field, position, kind, unit, description, spec_min, spec_max, plausible_min, plausible_max)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[],
                          $7::float8[], $8::float8[], $9::float8[], $10::float8[])`,
    Array.from({ length: 10 }, (_, i) => columns(i)),
  )
  await client.query(viewsSql())
}
