import { Type } from 'typebox'
import { readingCountFields, stationNames, stations } from '../../catalog/index.ts'
import type { Pool } from '../../db/index.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import { readingJson, sendJsonText } from '../reading.ts'
import { Counts, Reading, Station, StationPath, WindowQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

/** The catalog as served: what a client needs to read the data (not the simulator's model). */
const catalog: Station[] = stationNames.map((name): Station => {
  const s = stations[name]
  return {
    name,
    title: s.title,
    description: s.description,
    topic_suffix: name,
    fields: Object.entries(s.fields).map(([field, f]) =>
      f.kind === 'enum'
        ? { name: field, kind: f.kind, description: f.description, values: f.values }
        : {
            name: field,
            kind: f.kind,
            unit: f.unit,
            description: f.description,
            precision: f.precision,
            plausible: { min: f.plausible[0], max: f.plausible[1] },
            spec: { min: f.spec[0], max: f.spec[1] },
          },
    ),
  }
})
const catalogJson = JSON.stringify(catalog)

const LATEST_OF_STATION = `
SELECT ${readingJson('s')}::text AS body FROM sensor_data s WHERE station = $1 ORDER BY id DESC LIMIT 1`

/**
 * Records per station in [from, to): whole minutes from the 1-minute rollups (the count of each
 * station's first field: every reading carries all of its station's fields), and the partial
 * minutes at either edge from the readings themselves. Exact, and a few hundred rows read at most.
 */
const COUNTS = `
SELECT s.station, coalesce(sum(c.n), 0)::int AS records
FROM unnest($1::text[]) AS s(station) LEFT JOIN (
  SELECT r.station, sum(r.n) AS n FROM rollup_1m r
  JOIN unnest($1::text[], $4::text[]) AS f(station, field) ON r.station = f.station AND r.field = f.field
  WHERE r.category = '' AND r.bucket >= $5 AND r.bucket < $6 GROUP BY r.station
  UNION ALL
  SELECT station, count(*) FROM sensor_data WHERE reading_time >= $2 AND reading_time < $5 GROUP BY station
  UNION ALL
  SELECT station, count(*) FROM sensor_data WHERE reading_time >= $6 AND reading_time < $3 GROUP BY station
) c USING (station)
GROUP BY s.station ORDER BY s.station`

export function stationRoutes(app: Api, pool: Pool): void {
  app.get(
    '/stations',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The station catalog: fields, units, plausible and specification ranges',
        tags: ['stations'],
        response: answers({ 200: Type.Array(Station) }),
      },
    },
    async (_req, reply) => sendJsonText(reply, catalogJson),
  )

  app.get(
    '/stations/:station/latest',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: 'The newest reading of a station, in the reference shape',
        tags: ['stations'],
        params: StationPath,
        response: answers({ 200: Reading }, { notFound: true }),
      },
    },
    async (req, reply) => {
      const { rows } = await pool.query<{ body: string }>(LATEST_OF_STATION, [req.params.station])
      if (!rows[0]) {
        const detail = `no reading of ${req.params.station} has been loaded yet`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      return sendJsonText(reply, rows[0].body)
    },
  )

  app.get(
    '/stats/counts',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: 'Records per station in a window of reading time (default: the last hour)',
        tags: ['stats'],
        querystring: WindowQuery,
        response: answers({ 200: Counts }),
      },
    },
    async (req) => {
      const { from, to } = windowOf(req.query, 3_600_000)
      // Whole minutes [mlo, mhi) from the rollups; the edges, or a window inside one minute, from rows.
      let mlo = new Date(Math.ceil(from.getTime() / 60_000) * 60_000)
      let mhi = new Date(Math.floor(to.getTime() / 60_000) * 60_000)
      if (mlo >= mhi) mlo = mhi = to
      const { rows } = await pool.query<Counts['stations'][number]>({
        name: 'stats-counts',
        text: COUNTS,
        values: [readingCountFields.stations, from, to, readingCountFields.fields, mlo, mhi],
      })
      return { from: from.toISOString(), to: to.toISOString(), stations: rows }
    },
  )
}
