import { Type } from 'typebox'
import { stationNames, stations } from '../../catalog/index.ts'
import { latestReading, type Pool, readingCounts } from '../../db/index.ts'
import { sendJsonText } from '../json-text.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
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
      const json = await latestReading(pool, req.params.station)
      if (json === undefined) {
        const detail = `no reading of ${req.params.station} has been loaded yet`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      return sendJsonText(reply, json)
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
      const stations = await readingCounts(pool, from, to)
      return { from: from.toISOString(), to: to.toISOString(), stations }
    },
  )
}
