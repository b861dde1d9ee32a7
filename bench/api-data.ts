/**
 * bench:api's data: readings generated in SQL, shaped as the ETL writes them (src/etl/transform.ts):
 * `data` = the simulator's reading (`station`, `timestamp` in epoch seconds, `sensor_id`, `line`,
 * `seq`, one key per catalog field) rounded to the catalog's precision, `out_of_spec` when a
 * value is outside its specification limits, and `processed_at` (ISO 8601); `created_at` (the
 * load time) a moment after the reading.
 *
 * Reading `g` (0 ≤ g < total) is of station `g % 4`, and its time is spread evenly over `spanMs`
 * ending at `endMs`: inserted in order of g, ids grow with reading time as the ETL's do, and the
 * stations interleave. Per station, `j = g div 4` is its Kafka offset on `sensor.<station>`
 * (partition 0), and its two sensors alternate.
 */
import type { Measurement, NumericMeasurement } from '../src/catalog/index.ts'
import { plant, stationIds as stationNames } from '../test/plant.ts'

export interface Plan {
  total: number
  endMs: number
  spanMs: number
}

const lit = (s: string) => `'${s.replace(/'/g, "''")}'`
const num = (x: number) => String(x)
const col = (station: string, field: string) => `f_${station}_${field}`
const fieldsOf = (station: string): [string, Measurement][] =>
  plant.station(station)!.measurements.map((m) => [m.name, m])
/** The spec limits, or the plausible range where the catalog sets none. */
const specOf = (m: NumericMeasurement): [number, number] => [
  m.spec?.lsl ?? m.range.min,
  m.spec?.usl ?? m.range.max,
]

/** A numeric measurement: nominal + Gaussian noise, 1 % faults (spikes outside spec), clamped to plausible, rounded. */
function numericExpr(field: NumericMeasurement): string {
  const [lo, hi] = specOf(field)
  const nominal = field.simulation?.nominal ?? field.spec?.target ?? (lo + hi) / 2
  const noise = field.simulation?.noise ?? (hi - lo) / 10
  const span = hi - lo || 1
  const { min: pmin, max: pmax } = field.range
  const spike = `CASE WHEN random() < 0.5 THEN ${num(lo)} - ${num(span)} * (0.2 + random()) ELSE ${num(hi)} + ${num(span)} * (0.2 + random()) END`
  const raw = `CASE WHEN fault THEN ${spike} ELSE random_normal(${num(nominal)}, ${num(noise)}) END`
  // rounded in float8 (cheaper than numeric): the nearest double to the decimal, printed as such
  const scale = 10 ** (field.type === 'number' ? field.decimals : 0)
  return `round(least(greatest(${raw}, ${num(pmin)}), ${num(pmax)}) * ${scale}) / ${scale}`
}

/**
 * The SELECT of readings g in [from, to). Three levels, each computing its random draws once per
 * row (PostgreSQL does not flatten a subquery whose target list is volatile, so a value used
 * twice — in the JSON and in out_of_spec — is one draw). A field's expression is guarded by
 * `CASE WHEN k = <its station>`, so only the row's own station's values are drawn.
 */
function readingsSelect(plan: Plan, from: number, to: number): string {
  const startMs = plan.endMs - plan.spanMs
  const draws: string[] = ['random() < 0.01 AS fault']
  const values: string[] = []
  const docs: string[] = []
  stationNames.forEach((station, k) => {
    const fields = fieldsOf(station)
    const enumCase = new Map<string, string>()
    for (const [name, field] of fields) {
      if (field.type !== 'enum') continue
      const u = `u_${station}_${name}`
      draws.push(`CASE WHEN k = ${k} THEN random() END AS ${u}`)
      let acc = 0
      const arms = field.values.slice(0, -1).map((v, i) => {
        acc += field.simulation?.weights[i] ?? 1 / field.values.length
        return `WHEN ${u} < ${acc} THEN ${lit(v)}`
      })
      const expr = `(CASE ${arms.join(' ')} ELSE ${lit(field.values.at(-1)!)} END)`
      enumCase.set(name, expr)
      values.push(`CASE WHEN k = ${k} THEN ${expr} END AS ${col(station, name)}`)
    }
    const inspection = plant.inspection(station)
    for (const [name, field] of fields) {
      if (field.type === 'enum' || field.type === 'boolean') continue
      let expr = numericExpr(field)
      const result = inspection && enumCase.get(inspection.field)
      if (inspection && name === inspection.defects && result) {
        // As the simulator: a passed vehicle has at most one defect, a failed one carries more.
        const b = 'round(abs(random_normal()) * 0.8)'
        expr = `(CASE WHEN ${result} = ${lit(inspection.pass)} THEN least(${b}, 1) ELSE ${b} + 1 + floor(random() * 4) END)::float8`
      }
      values.push(`CASE WHEN k = ${k} THEN ${expr} END AS ${col(station, name)}`)
    }
    const outOfSpec = fields
      .filter(([, f]) => f.numeric && 'spec' in f && f.spec)
      .map(([name, f]) => {
        const [lo, hi] = specOf(f as NumericMeasurement)
        const c = col(station, name)
        return `CASE WHEN ${c} < ${num(lo)} OR ${c} > ${num(hi)} THEN ${lit(name)} END`
      })
    // The document as JSON text, cast to jsonb: measured cheaper than jsonb_build_object (float8
    // prints its shortest exact form, as JSON.stringify does).
    const parts = [
      `'{"station":"${station}","timestamp":' || (ts_ms / 1000.0::float8)`,
      `',"sensor_id":"${station}-0' || (j % 2 + 1)`,
      `'","line":"L1","seq":' || (j / 2 + 1)`,
      ...fields.map(([name, f]) =>
        f.type === 'enum'
          ? `',"${name}":"' || ${col(station, name)} || '"'`
          : `',"${name}":' || ${col(station, name)}`,
      ),
      // only when a value is outside its spec
      `coalesce(',"out_of_spec":["' || nullif(concat_ws('","', ${outOfSpec.join(', ')}), '') || '"]', '')`,
      `',"processed_at":"' || to_char((rt + interval '250 ms') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') || '"}'`,
    ]
    docs.push(`WHEN ${k} THEN (${parts.join('\n      || ')})::jsonb`)
  })
  const names = `ARRAY[${stationNames.map(lit).join(', ')}]`
  const tsMs = `${startMs}::bigint + ((g + 1) * ${plan.spanMs}::bigint) / ${plan.total}::bigint`
  return `
SELECT (${names})[k + 1], CASE k ${docs.join('\n  ')} END, rt, rt + interval '251 ms',
       'sensor.' || (${names})[k + 1], 0, j
FROM (
  SELECT k, j, ts_ms, rt, ${values.join(',\n    ')}
  FROM (
    SELECT k, j, ts_ms, to_timestamp(ts_ms / 1000.0::float8) AS rt, ${draws.join(', ')}
    FROM (SELECT g, (g % 4)::int AS k, g / 4 AS j, ${tsMs} AS ts_ms
          FROM generate_series(${from}::bigint, ${to - 1}::bigint) g) s0
  ) s1
) s2`
}

/** Chunks of at most `chunk` readings, in order: the SELECT of each. */
export function insertChunks(plan: Plan, chunk: number): { rows: number; select: string }[] {
  const out: { rows: number; select: string }[] = []
  for (let a = 0; a < plan.total; a += chunk) {
    const b = Math.min(a + chunk, plan.total)
    out.push({ rows: b - a, select: readingsSelect(plan, a, b) })
  }
  return out
}
