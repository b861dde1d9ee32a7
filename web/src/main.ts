/**
 * The plant dashboard: loads the station catalog, builds the panels, refreshes them every
 * REFRESH_MS (and soon after live readings arrive), and feeds stream readings straight into the
 * station cards and the SPC chart, and the stream's alarms into the alarm banner and list. The
 * catalog is followed live: when the stream says a new version was applied, the panels are
 * rebuilt from /stations, without a reload. Settings from the URL: `?window=24h`, `?silent=120`
 * (seconds after which a station counts as silent).
 */
import './style.css'
import './alarms.css'
import { api, onApiStatus, type Reading, type Station } from './api.ts'
import { byId } from './dom.ts'
import { Connection, openStream } from './live.ts'
import { AlarmsPanel } from './panels/alarms.ts'
import { refreshCounts } from './panels/counts.ts'
import { kafkaText, refreshPipeline, sourcesText, stallText } from './panels/pipeline.ts'
import { QualityPanel } from './panels/quality.ts'
import { SpcPanel } from './panels/spc.ts'
import { StationCards } from './panels/stations.ts'
import { TrendsPanel } from './panels/trends.ts'
import { isWindowKey, rangeOf, type WindowKey, windows } from './time.ts'

const REFRESH_MS = 15_000
/** After a live reading, the aggregates follow within this delay (not on every reading). */
const AFTER_READING_MS = 3_000

const params = new URLSearchParams(location.search)
let win: WindowKey = isWindowKey(params.get('window')) ? (params.get('window') as WindowKey) : '1h'
const silentAfterSec = Number(params.get('silent')) || 60

const connection = new Connection(byId('banner'), byId('live'))
onApiStatus((ok, error) => connection.fetched(ok, error))

async function loadCatalog(): Promise<Station[]> {
  for (;;) {
    try {
      return await api.stations()
    } catch {
      await new Promise((r) => setTimeout(r, 3000))
    }
  }
}

const cards = new StationCards(silentAfterSec)
const trends = new TrendsPanel()
const quality = new QualityPanel()
const spc = new SpcPanel()
const alarms = new AlarmsPanel(() => spc.alarmsChanged())
let catalog: Station[] = []
follow(await loadCatalog())

function follow(next: Station[]): void {
  catalog = next
  for (const panel of [cards, trends, quality, spc, alarms]) panel.setCatalog(next)
}

/**
 * Reads /stations again and rebuilds the panels if it changed: on a catalog event, and when the
 * stream is back after an outage (an event sent meanwhile is not replayed). One read at a time,
 * in order; a failed read is tried again shortly.
 */
let reloading: Promise<void> = Promise.resolve()
let retryReload: ReturnType<typeof setTimeout> | undefined
function reloadCatalog(): void {
  clearTimeout(retryReload)
  reloading = reloading.then(async () => {
    let next: Station[]
    try {
      next = await api.stations()
    } catch {
      retryReload = setTimeout(reloadCatalog, 3000)
      return
    }
    if (JSON.stringify(next) === JSON.stringify(catalog)) return
    follow(next)
    scheduleRefresh(0)
  })
}

async function refreshAll(): Promise<void> {
  const range = rangeOf(win)
  const label = windows[win].label
  await Promise.allSettled([
    ...cards.stations.map(async (s) => {
      const r = await api.latest(s)
      if (r) cards.show(r)
    }),
    refreshCounts(catalog, range, label),
    refreshPipeline(range, label, (p) => {
      connection.etl(p.etl.stalled ? stallText(p) : (kafkaText(p) ?? sourcesText(p)))
      cards.markStale(p.stale_sensors)
    }),
    trends.refresh(range, win),
    quality.refresh(range, win),
    spc.refresh(),
    alarms.refresh(),
  ])
}

let timer: ReturnType<typeof setTimeout> | undefined
let nextAt = 0
function scheduleRefresh(delayMs: number): void {
  clearTimeout(timer)
  nextAt = Date.now() + delayMs
  timer = setTimeout(async () => {
    nextAt = Number.POSITIVE_INFINITY // a refresh is running: readings meanwhile need no other
    await refreshAll()
    scheduleRefresh(REFRESH_MS)
  }, delayMs)
}

/**
 * Readings from the stream, applied in batches: one load can commit thousands, and the cards
 * and the SPC chart need only the newest. (A timer, not requestAnimationFrame, which stops in a
 * hidden tab and would let the queue grow.)
 */
let queued: Reading[] = []
function onReading(r: Reading): void {
  connection.reading()
  if (queued.push(r) === 1) setTimeout(applyReadings, 200)
}
function applyReadings(): void {
  const batch = queued
  queued = []
  const newest = new Map<string, Reading>()
  for (const r of batch) if ((newest.get(r.station)?.id ?? 0) < r.id) newest.set(r.station, r)
  for (const r of newest.values()) cards.show(r)
  spc.push(batch)
  if (nextAt - Date.now() > AFTER_READING_MS && nextAt !== Number.POSITIVE_INFINITY) {
    scheduleRefresh(AFTER_READING_MS)
  }
}

const picker = byId('window')
for (const input of picker.querySelectorAll<HTMLInputElement>('input[name="window"]')) {
  input.checked = input.value === win
  input.addEventListener('change', () => {
    if (!isWindowKey(input.value)) return
    win = input.value
    const url = new URL(location.href)
    url.searchParams.set('window', win)
    history.replaceState(null, '', url)
    scheduleRefresh(0)
  })
}

setInterval(() => cards.tick(), 1000)
scheduleRefresh(0)
let opened = false
openStream({
  reading: onReading,
  catalog: reloadCatalog,
  alarms: (list) => alarms.live(list),
  status: (ok) => {
    connection.stream(ok)
    // Back after an outage: catch up on everything at once.
    if (ok && opened) {
      reloadCatalog()
      scheduleRefresh(0)
    }
    opened ||= ok
  },
})
