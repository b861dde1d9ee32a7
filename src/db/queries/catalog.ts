import type pg from 'pg'
import type {
  Catalog,
  CatalogDiff,
  CatalogDocument,
  CatalogHistory,
  Measurement,
  SpecVersion,
  Station,
} from '../../catalog/index.ts'

/**
 * The catalog in the database (migration 0009, docs/catalog.md): its versions, every station it
 * ever had, the spec limits' history, and what derives from it — `catalog_fields` and the typed
 * BI views of schema `bi`, re-derived at every apply and after every migration run.
 */

/** NOTIFY channel of a new catalog version (payload: the version). */
export const CATALOG_CHANNEL = 'evf_catalog'
// Any constant works; it only has to be the same for every process applying a catalog.
const CATALOG_LOCK = 727_002

/** The newest applied version and what the database keeps besides it, or undefined before the first. */
export async function readCatalogState(
  client: pg.ClientBase,
): Promise<
  { document: CatalogDocument; history: CatalogHistory; source: string; sha256: string } | undefined
> {
  const { rows } = await client.query<{
    version: number
    applied_at: Date
    document: CatalogDocument
    source: string
    sha256: string
  }>(
    'SELECT version, applied_at, document, source, sha256 FROM catalog_versions ORDER BY version DESC LIMIT 1',
  )
  const latest = rows[0]
  if (!latest) return undefined
  const retired = await client.query<{
    definition: NonNullable<CatalogHistory['retired']>[number]['station']
    line: string
    line_name: string
    area: string
    area_name: string
    retired_version: number
    retired_at: Date
  }>(`SELECT definition, line, line_name, area, area_name, retired_version, retired_at
      FROM catalog_stations WHERE retired_version IS NOT NULL ORDER BY retired_at, station`)
  const limits = await client.query<{
    station: string
    field: string
    from: number
    lsl: number | null
    target: number | null
    usl: number | null
  }>(
    `SELECT station, field, extract(epoch FROM valid_from)::float8 AS from, lsl, target, usl FROM catalog_limits`,
  )
  const byMeasurement = new Map<string, SpecVersion[]>()
  for (const r of limits.rows) {
    const key = `${r.station}/${r.field}`
    const v: SpecVersion = { from: r.from }
    if (r.lsl !== null) v.lsl = r.lsl
    if (r.target !== null) v.target = r.target
    if (r.usl !== null) v.usl = r.usl
    byMeasurement.set(key, [...(byMeasurement.get(key) ?? []), v])
  }
  return {
    document: latest.document,
    source: latest.source,
    sha256: latest.sha256,
    history: {
      version: latest.version,
      appliedAt: latest.applied_at.toISOString(),
      retired: retired.rows.map((r) => ({
        station: r.definition,
        line: { id: r.line, name: r.line_name },
        area: { id: r.area, name: r.area_name },
        version: r.retired_version,
        at: r.retired_at.toISOString(),
      })),
      limits: byMeasurement,
    },
  }
}

/** The newest version's number (0 before the first): cheap, for a follower's safety-net poll. */
export async function catalogVersion(client: pg.ClientBase | pg.Pool): Promise<number> {
  const { rows } = await client.query<{ v: number }>(
    'SELECT coalesce(max(version), 0) AS v FROM catalog_versions',
  )
  return rows[0]!.v
}

/** One apply at a time, until the transaction ends. */
export async function lockCatalog(client: pg.ClientBase): Promise<void> {
  await client.query('SELECT pg_advisory_xact_lock($1)', [CATALOG_LOCK])
}

/**
 * Records `next` as version `next.version`: the version row, its stations (retiring those it no
 * longer has), the new limits from now (from the start for a first version), in the caller's
 * transaction; then the caller derives the views (`writeDerived`) and notifies (`notifyCatalog`).
 */
export async function writeCatalogVersion(
  client: pg.ClientBase,
  next: Catalog,
  diff: CatalogDiff,
  meta: { source: string; sha256: string },
): Promise<void> {
  const { version } = next
  await client.query(
    'INSERT INTO catalog_versions (version, source, sha256, document, diff) VALUES ($1, $2, $3, $4, $5)',
    [version, meta.source, meta.sha256, JSON.stringify(next.document), JSON.stringify(diff)],
  )
  const lines = next.document.lines
  for (const s of next.stations) {
    const l = lines.find((x) => x.id === s.line.id)!
    const definition = l.stations.find((x) => x.id === s.id)!
    await client.query(
      `INSERT INTO catalog_stations (station, line, line_name, area, area_name, definition, first_version)
       VALUES ($1, $2, $3, $4, $5, $6, $7)
       ON CONFLICT (station) DO UPDATE SET line = $2, line_name = $3, area = $4, area_name = $5,
         definition = $6, retired_version = NULL, retired_at = NULL`,
      [s.id, s.line.id, s.line.name, s.area.id, s.area.name, JSON.stringify(definition), version],
    )
  }
  if (diff.retired.length > 0) {
    await client.query(
      'UPDATE catalog_stations SET retired_version = $1, retired_at = now() WHERE station = ANY($2)',
      [version, diff.retired],
    )
  }
  for (const l of diff.limits) {
    await client.query(
      `INSERT INTO catalog_limits (station, field, valid_from, lsl, target, usl, version)
       VALUES ($1, $2, CASE WHEN $7 = 1 THEN '-infinity'::timestamptz ELSE now() END, $3, $4, $5, $6)
       ON CONFLICT (station, field, valid_from) DO UPDATE SET lsl = $3, target = $4, usl = $5, version = $6`,
      [l.station, l.measurement, l.lsl ?? null, l.target ?? null, l.usl ?? null, version, version],
    )
  }
}

/** Tells every follower of the catalog (at commit) that `version` is in force. */
export async function notifyCatalog(client: pg.ClientBase, version: number): Promise<void> {
  await client.query('SELECT pg_notify($1, $2)', [CATALOG_CHANNEL, String(version)])
}

/** The SHA-256 of the newest version applied from `source`, or undefined if none was. */
export async function lastAppliedFrom(client: pg.ClientBase, source: string): Promise<string | undefined> {
  const { rows } = await client.query<{ sha256: string }>(
    'SELECT sha256 FROM catalog_versions WHERE source = $1 ORDER BY version DESC LIMIT 1',
    [source],
  )
  return rows[0]?.sha256
}

/** Re-derives `catalog_fields` and the BI views from `catalog` (its stations and the retired ones). */
export async function writeDerived(client: pg.ClientBase, catalog: Catalog): Promise<void> {
  await client.query('DELETE FROM catalog_fields')
  const rows = catalog.all.flatMap((s) => s.measurements.map((m, position) => fieldRow(s, m, position)))
  const columns = (i: number) => rows.map((r) => r[i])
  await client.query(
    `INSERT INTO catalog_fields (station, field, position, kind, unit, description, spec_min, spec_max,
                                 plausible_min, plausible_max, ucum, target, decimals, retired)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::text[], $5::text[], $6::text[], $7::float8[],
                          $8::float8[], $9::float8[], $10::float8[], $11::text[], $12::float8[], $13::int[], $14::bool[])`,
    Array.from({ length: 14 }, (_, i) => columns(i)),
  )
  await client.query(viewsSql(catalog))
}

function fieldRow(s: Station, m: Measurement, position: number): unknown[] {
  const head = [s.id, m.name, position, m.type]
  const retired = s.retired !== undefined
  if (m.type === 'enum' || m.type === 'boolean')
    return [...head, '', m.description, null, null, null, null, null, null, null, retired]
  const spec = m.spec ?? {}
  return [
    ...head,
    m.symbol ?? m.unit,
    m.description,
    spec.lsl ?? null,
    spec.usl ?? null,
    m.range.min,
    m.range.max,
    m.unit,
    spec.target ?? null,
    m.type === 'number' ? m.decimals : 0,
    retired,
  ]
}

const ident = (name: string): string => {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`not a safe SQL identifier: ${name}`)
  return `"${name}"`
}
const literal = (text: string): string => `'${text.replaceAll("'", "''")}'`

const specText = (m: Measurement): string => {
  if (!m.numeric || !('spec' in m) || !m.spec) return 'no specification limits'
  const { lsl, usl } = m.spec
  return `specification ${lsl ?? '−∞'}…${usl ?? '∞'}`
}

function readingsView(s: Station): string {
  const cols = [
    'id',
    'station',
    'reading_time',
    `(data->>'processed_at')::timestamptz AS processed_at`,
    'created_at AS loaded_at',
    `data->>'sensor_id' AS sensor_id`,
  ]
  const comments: string[] = []
  const view = `bi.${ident(`${s.id}_readings`)}`
  for (const m of s.measurements) {
    const col = ident(m.column)
    const value = `data->${literal(m.name)}`
    if (m.type === 'enum' || m.type === 'boolean') {
      cols.push(m.type === 'enum' ? `(${value} #>> '{}') AS ${col}` : `(${value})::boolean AS ${col}`)
      const values = m.type === 'enum' ? `: ${m.values.join(', ')}` : ''
      comments.push(`COMMENT ON COLUMN ${view}.${col} IS ${literal(`${m.description}${values}`)}`)
      continue
    }
    const type = m.type === 'integer' ? 'integer' : `numeric(${Math.max(14, m.decimals + 6)}, ${m.decimals})`
    cols.push(`(${value})::${type} AS ${col}`)
    const unit = ` [${m.symbol ?? m.unit}]`
    comments.push(`COMMENT ON COLUMN ${view}.${col} IS ${literal(`${m.description}${unit}; ${specText(m)}`)}`)
    if (!m.spec) continue
    // The verdict the ETL gave, against the limits in force at the reading's time.
    const inSpec = ident(`${m.name}_in_spec`)
    cols.push(
      `CASE WHEN data ? ${literal(m.name)} THEN NOT coalesce(data->'out_of_spec' ? ${literal(m.name)}, false) END AS ${inSpec}`,
    )
    comments.push(
      `COMMENT ON COLUMN ${view}.${inSpec} IS ${literal(`${m.column} within the specification limits in force at its reading time (now ${specText(m).replace('specification ', '')}${unit})`)}`,
    )
  }
  cols.push(`NOT (data ? 'out_of_spec') AS all_in_spec`)
  const retired = s.retired ? ` Retired at ${s.retired.at} (catalog version ${s.retired.version}).` : ''
  return [
    `CREATE VIEW ${view} AS SELECT ${cols.join(',\n  ')}\nFROM public.sensor_data WHERE station = ${literal(s.id)}`,
    `COMMENT ON VIEW ${view} IS ${literal(`${s.name} (line ${s.line.id}): one row per reading, one typed column per measurement (units in the names and comments).${retired}`)}`,
    ...comments,
  ].join(';\n')
}

function rollupView(width: '1m' | '1h'): string {
  const view = `bi.${ident(`rollup_${width}`)}`
  return `CREATE VIEW ${view} AS
SELECT r.station, r.field, f.unit, r.bucket, r.n AS readings, r.min, r.max,
       r.sum / r.n AS mean,
       CASE WHEN r.n > 1 THEN sqrt(greatest((r.sumsq - r.sum * r.sum / r.n) / (r.n - 1), 0)) END AS stddev,
       l.lsl AS spec_min, l.usl AS spec_max
FROM public.rollup_${width} r JOIN public.catalog_fields f USING (station, field)
LEFT JOIN LATERAL (
  SELECT lsl, usl FROM public.catalog_limits l
  WHERE l.station = r.station AND l.field = r.field AND l.valid_from <= r.bucket
  ORDER BY l.valid_from DESC LIMIT 1) l ON true
WHERE f.kind IN ('number', 'integer');
COMMENT ON VIEW ${view} IS ${literal(`Per station, numeric measurement and ${width === '1m' ? 'minute' : 'hour'} of reading time: count, min, max, mean, sample standard deviation, and the spec limits in force then.`)}`
}

function viewsSql(catalog: Catalog): string {
  const inspection = catalog.inspection()
  return [
    'DROP SCHEMA IF EXISTS bi CASCADE',
    'CREATE SCHEMA bi',
    `COMMENT ON SCHEMA bi IS 'Typed views for BI tools (Tableau, Metabase, Excel): one column per measurement.'`,
    ...catalog.all.map(readingsView),
    rollupView('1m'),
    rollupView('1h'),
    ...(inspection
      ? [
          `CREATE VIEW bi.quality_results_1h AS
SELECT bucket, category AS result, n AS inspections FROM public.rollup_1h
WHERE station = ${literal(inspection.station)} AND field = ${literal(inspection.field)}`,
          `COMMENT ON VIEW bi.quality_results_1h IS ${literal(`Inspections per hour and result (${inspection.results.join(', ')}).`)}`,
        ]
      : []),
    `CREATE VIEW bi.catalog_fields AS SELECT * FROM public.catalog_fields`,
    `COMMENT ON VIEW bi.catalog_fields IS 'Every measurement of every station: unit, specification and plausible limits.'`,
    `CREATE VIEW bi.catalog_limits AS SELECT station, field, valid_from, lead(valid_from) OVER (PARTITION BY station, field ORDER BY valid_from) AS valid_to, lsl, target, usl FROM public.catalog_limits`,
    `COMMENT ON VIEW bi.catalog_limits IS 'Each measurement''s spec limits over time: in force from valid_from until valid_to.'`,
    `CREATE VIEW bi.catalog_stations AS SELECT station, line, line_name, area, area_name, definition->>'name' AS name, retired_at FROM public.catalog_stations`,
    `CREATE VIEW bi.alarm_history AS
SELECT id, at, recorded_at, station, measurement, rule_id AS rule, subject, kind, severity, from_state, to_state,
       value, reason, by_whom, comment, silenced_by FROM public.alarm_events`,
    `COMMENT ON VIEW bi.alarm_history IS 'Every transition of every alarm (ISA-18.2 states): who, when, the value, the rule; silenced_by names the silence that kept it from being sent.'`,
    `CREATE VIEW bi.alarms AS
SELECT a.rule_id AS rule, a.subject, coalesce(a.station, r.station) AS station, coalesce(a.measurement, r.measurement) AS measurement,
       r.kind, r.severity, a.state, a.active, a.value, a.changed_at, a.shelved_until FROM public.alarms a JOIN public.alarm_rules r ON r.id = a.rule_id`,
    `COMMENT ON VIEW bi.alarms IS 'Each alarm and its state now.'`,
    'GRANT USAGE ON SCHEMA bi TO evf_bi, evf_api',
    'GRANT SELECT ON ALL TABLES IN SCHEMA bi TO evf_bi, evf_api',
  ].join(';\n')
}
