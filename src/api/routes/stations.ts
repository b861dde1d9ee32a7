import { Type } from 'typebox'
import { latestReading, type Pool, readingCounts, staleSensors } from '../../db/index.ts'
import type { LiveCatalog } from '../catalog.ts'
import { sendJsonText } from '../json-text.ts'
import { windowOf } from '../params.ts'
import { answers, problem, sendProblem } from '../problems.ts'
import { Assets, Counts, LatestReading, Station, StationPath, WindowQuery } from '../schemas.ts'
import type { Api } from '../types.ts'

export function stationRoutes(app: Api, pool: Pool, live: LiveCatalog): void {
  app.get(
    '/stations',
    {
      config: { scope: 'read' },
      schema: {
        summary:
          'The station catalog in force: fields, units, plausible and specification ranges; retired stations too',
        tags: ['stations'],
        response: answers({ 200: Type.Array(Station) }),
      },
    },
    async (_req, reply) => sendJsonText(reply, live.json().stations),
  )

  app.get(
    '/assets',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The plant’s hierarchy (ISA-95): site, areas, lines and their stations',
        tags: ['stations'],
        response: answers({ 200: Assets }),
      },
    },
    async (_req, reply) => sendJsonText(reply, live.json().assets),
  )

  app.get(
    '/stations/:station/latest',
    {
      config: { cacheable: true, scope: 'read' },
      schema: {
        summary: 'The newest reading of a station, in the reference shape',
        tags: ['stations'],
        params: StationPath,
        response: answers({ 200: LatestReading }, { notFound: true }),
      },
    },
    async (req, reply) => {
      const [json, stale] = await Promise.all([
        latestReading(pool, req.params.station),
        staleSensors(pool, req.params.station),
      ])
      if (json === undefined) {
        const detail = `no reading of ${req.params.station} has been loaded yet`
        return sendProblem(reply, problem('NOT_FOUND', detail, { instance: req.url }))
      }
      const staleJson = JSON.stringify(
        stale.map((s) => ({ sensor_id: s.sensorId, since: s.since.toISOString(), reason: s.reason })),
      )
      return sendJsonText(reply, `${json.slice(0, -1)},"stale_sensors":${staleJson}}`)
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
