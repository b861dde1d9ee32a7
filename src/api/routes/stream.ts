import { Type } from 'typebox'
import { type LiveReading, type Pool, readingsAfter } from '../../db/index.ts'
import type { AlarmFeed } from '../alarm-feed.ts'
import type { LiveCatalog } from '../catalog.ts'
import type { LiveFeed } from '../live.ts'
import { answers } from '../problems.ts'
import { ReadingEvent, StreamHeaders, StreamQuery } from '../schemas.ts'
import { AlarmStreamEvent } from '../schemas-alarms.ts'
import type { Api } from '../types.ts'

const HEARTBEAT_MS = 15_000

const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
}

const SCHEMA = {
  summary:
    'Readings as they are loaded, as Server-Sent Events (`event: reading`, `id`: the row id; `event: catalog` when a new catalog version is applied; `event: alarm`, the alarms not NORMAL, at once and when they change)',
  description:
    'Reconnect with a `Last-Event-ID` header (EventSource does) to receive the readings missed meanwhile.',
  tags: ['readings'],
  querystring: StreamQuery,
  headers: StreamHeaders,
  response: answers({
    200: {
      description: 'an endless stream of Server-Sent Events',
      content: { 'text/event-stream': { schema: Type.Union([ReadingEvent, AlarmStreamEvent]) } },
    },
  }),
}

const event = (r: LiveReading) => `id: ${r.id}\nevent: reading\ndata: ${r.json}\n\n`

/**
 * `GET /sensor-data/stream`: Server-Sent Events of readings as the ETL commits them. A client
 * that reconnects with `Last-Event-ID` first gets what it missed (up to 1000 readings), then the
 * live feed; ids it already has are not sent twice. A new catalog version is an `event: catalog`
 * (its data: `{"version": N}`), so the dashboard rebuilds its panels without a reload. The alarms
 * not NORMAL are an `event: alarm` (its data: the array `GET /alarms` answers) once connected and
 * after each change, so the dashboard's banner and list follow them on the same connection.
 */
export function streamRoutes(
  app: Api,
  pool: Pool,
  feed: LiveFeed,
  live: LiveCatalog,
  alarms: AlarmFeed,
): void {
  const open = new Set<() => void>()
  // Streams never end on their own: end them when the server closes, or close would wait forever.
  app.addHook('preClose', async () => {
    for (const end of open) end()
  })

  app.get(
    '/sensor-data/stream',
    {
      config: { scope: 'read' },
      schema: SCHEMA,
    },
    async (req, reply) => {
      const station = req.query.station
      const lastEventId = req.headers['last-event-id']
      let lastSent = lastEventId === undefined ? Number.POSITIVE_INFINITY : Number(lastEventId)
      const pending: LiveReading[] = []
      let replaying = lastEventId !== undefined
      const send = (readings: LiveReading[]) => {
        let out = ''
        for (const r of readings) {
          if (station && r.station !== station) continue
          if (Number.isFinite(lastSent) && r.id <= lastSent) continue
          out += event(r)
        }
        if (out) reply.raw.write(out)
      }
      const unsubscribe = await feed.subscribe((readings) => {
        if (replaying) pending.push(...readings)
        else send(readings)
      })
      reply.hijack()
      reply.raw.writeHead(200, SSE_HEADERS)
      reply.raw.write(': connected\nretry: 2000\n\n')
      if (replaying) {
        const rows = await readingsAfter(pool, lastSent, station)
        send(rows)
        if (rows.length > 0) lastSent = rows[rows.length - 1]!.id
        replaying = false
        send(pending.splice(0))
      } else lastSent = Number.NaN // live only: nothing to skip
      const heartbeat = setInterval(() => reply.raw.write(': ping\n\n'), HEARTBEAT_MS)
      const unfollow = live.onChange((c) =>
        reply.raw.write(`event: catalog\ndata: {"version":${c.version}}\n\n`),
      )
      const unalarm = alarms.subscribe((json) => reply.raw.write(`event: alarm\ndata: ${json}\n\n`))
      const end = () => {
        clearInterval(heartbeat)
        unfollow()
        unalarm()
        unsubscribe()
        open.delete(end)
        reply.raw.end()
      }
      open.add(end)
      req.raw.on('close', end)
    },
  )
}
