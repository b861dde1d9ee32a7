/**
 * bench:soak's plot: a pure function from the run's series to an SVG (two panels sharing the
 * time axis: lag in messages, latency reading → queryable in ms on a log scale), and its
 * rendering to PNG in headless Chromium (no plotting library needed).
 */
import { writeFileSync } from 'node:fs'

export interface PlotData {
  title: string
  /** seconds since the start of the measurement, messages */
  lag: { t: number; lag: number }[]
  /** bucket start (s) and the bucket's latency percentiles (ms) */
  latency: { t: number; p50: number | null; p99: number | null }[]
  bucketSec: number
  /** vertical lines: the simulator stopping, ramp steps */
  markers: { t: number; label: string }[]
  /** a horizontal line on the latency panel (the p99 target) */
  targetMs?: number
}

const W = 1000
const LEFT = 80
const RIGHT = 20
const PANEL_H = 230
const TOP = [50, 340] as const
const COLORS = { lag: '#1f77b4', p99: '#d62728', p50: '#2ca02c', grid: '#ddd', marker: '#888' }

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')

/** A step of 1, 2 or 5 × 10^k giving about `count` ticks over `range`. */
export function niceStep(range: number, count: number): number {
  const raw = range / Math.max(1, count)
  if (raw <= 0) return 1
  const p = 10 ** Math.floor(Math.log10(raw))
  const f = raw / p
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p
}

const short = (n: number): string =>
  n >= 1e6 ? `${+(n / 1e6).toFixed(1)}M` : n >= 1e3 ? `${+(n / 1e3).toFixed(1)}k` : `${+n.toFixed(1)}`

function path(points: [number, number][]): string {
  return points.map(([x, y], i) => `${i ? 'L' : 'M'}${x.toFixed(1)},${y.toFixed(1)}`).join('')
}

interface Axis {
  x: (t: number) => number
  tMax: number
}

function xAxis(axis: Axis, top: number): string {
  const step = niceStep(axis.tMax, 10)
  const out: string[] = []
  for (let t = 0; t <= axis.tMax + 1e-9; t += step) {
    const x = axis.x(t)
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + PANEL_H}" stroke="${COLORS.grid}"/>`,
      `<text x="${x}" y="${top + PANEL_H + 16}" text-anchor="middle">${short(t)}</text>`,
    )
  }
  out.push(`<text x="${W / 2}" y="${top + PANEL_H + 34}" text-anchor="middle">time since start, s</text>`)
  return out.join('')
}

function markers(data: PlotData, axis: Axis, top: number): string {
  return data.markers
    .map((m, i) => {
      const x = axis.x(m.t)
      // near the right edge the label goes left of its line; labels step down so close ones don't overlap
      const [tx, anchor] = x > W - 160 ? [x - 3, 'end'] : [x + 3, 'start']
      return (
        `<line x1="${x}" y1="${top}" x2="${x}" y2="${top + PANEL_H}" stroke="${COLORS.marker}" stroke-dasharray="4 3"/>` +
        `<text x="${tx}" y="${top + 12 + (i % 3) * 13}" text-anchor="${anchor}" fill="${COLORS.marker}">${esc(m.label)}</text>`
      )
    })
    .join('')
}

function lagPanel(data: PlotData, axis: Axis): string {
  const top = TOP[0]
  const yMax = Math.max(10, ...data.lag.map((s) => s.lag)) * 1.05
  const y = (v: number) => top + PANEL_H - (v / yMax) * PANEL_H
  const step = niceStep(yMax, 5)
  const out = [
    `<text x="${LEFT}" y="${top - 8}" font-weight="bold">Lag (messages in Kafka not yet committed)</text>`,
  ]
  for (let v = 0; v <= yMax; v += step) {
    out.push(
      `<line x1="${LEFT}" y1="${y(v)}" x2="${W - RIGHT}" y2="${y(v)}" stroke="${COLORS.grid}"/>`,
      `<text x="${LEFT - 6}" y="${y(v) + 4}" text-anchor="end">${short(v)}</text>`,
    )
  }
  out.push(xAxis(axis, top), markers(data, axis, top))
  out.push(
    `<path d="${path(data.lag.map((s) => [axis.x(s.t), y(s.lag)]))}" fill="none" stroke="${COLORS.lag}" stroke-width="1.5"/>`,
  )
  return out.join('')
}

function latencyPanel(data: PlotData, axis: Axis): string {
  const top = TOP[1]
  const values = data.latency.flatMap((b) => [b.p50, b.p99]).filter((v): v is number => v !== null && v > 0)
  // the target line well inside the panel, clear of the legend
  const lo = 10 ** Math.floor(Math.log10(Math.min(100, ...values)))
  const hi = 10 ** Math.ceil(Math.log10(Math.max(lo * 10, (data.targetMs ?? 0) * 2, ...values)))
  const y = (v: number) =>
    top + PANEL_H - ((Math.log10(Math.max(v, lo)) - Math.log10(lo)) / Math.log10(hi / lo)) * PANEL_H
  const out = [
    `<text x="${LEFT}" y="${top - 8}" font-weight="bold">Latency reading → queryable, ms (log scale), per ${data.bucketSec} s of commit time</text>`,
  ]
  // 1, 2, 5 of each decade; the 2s and 5s labelled only when there are few decades
  const few = hi / lo <= 1000
  for (let v = lo; v <= hi; v *= 10) {
    for (const m of v < hi ? [1, 2, 5] : [1]) {
      const yv = y(v * m)
      out.push(`<line x1="${LEFT}" y1="${yv}" x2="${W - RIGHT}" y2="${yv}" stroke="${COLORS.grid}"/>`)
      if (m === 1 || few)
        out.push(`<text x="${LEFT - 6}" y="${yv + 4}" text-anchor="end">${short(v * m)}</text>`)
    }
  }
  out.push(xAxis(axis, top), markers(data, axis, top))
  if (data.targetMs) {
    const ty = y(data.targetMs)
    out.push(
      `<line x1="${LEFT}" y1="${ty}" x2="${W - RIGHT}" y2="${ty}" stroke="${COLORS.p99}" stroke-dasharray="2 4"/>`,
      `<text x="${W - RIGHT - 4}" y="${ty - 4}" text-anchor="end" fill="${COLORS.p99}">p99 target ${short(data.targetMs)} ms</text>`,
    )
  }
  for (const key of ['p50', 'p99'] as const) {
    const pts = data.latency
      .filter((b) => b[key] !== null)
      .map((b): [number, number] => [axis.x(b.t + data.bucketSec / 2), y(b[key]!)])
    out.push(`<path d="${path(pts)}" fill="none" stroke="${COLORS[key]}" stroke-width="1.5"/>`)
    out.push(...pts.map(([px, py]) => `<circle cx="${px}" cy="${py}" r="2" fill="${COLORS[key]}"/>`))
  }
  const legend = [
    ['p99', COLORS.p99],
    ['p50', COLORS.p50],
  ]
  legend.forEach(([name, color], i) => {
    const lx = W - RIGHT - 120 + i * 60
    out.push(
      `<rect x="${lx}" y="${top - 18}" width="12" height="4" fill="${color}"/><text x="${lx + 16}" y="${top - 13}">${name}</text>`,
    )
  })
  return out.join('')
}

/** The whole figure as an SVG document. */
export function soakSvg(data: PlotData): string {
  const tMax = Math.max(
    10,
    ...data.lag.map((s) => s.t),
    ...data.latency.map((b) => b.t + data.bucketSec),
    ...data.markers.map((m) => m.t),
  )
  const axis: Axis = { tMax, x: (t) => LEFT + (t / tMax) * (W - LEFT - RIGHT) }
  const h = TOP[1] + PANEL_H + 45
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}" font-family="sans-serif" font-size="12">`,
    `<title>${esc(data.title)}</title>`,
    `<rect width="${W}" height="${h}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(data.title)}</text>`,
    lagPanel(data, axis),
    latencyPanel(data, axis),
    '</svg>',
  ].join('\n')
}

/**
 * Renders an SVG to a PNG with Debian's Chromium (as the browser tests launch it). Without
 * Chromium, writes the SVG next to where the PNG would go and returns that path instead.
 */
export async function renderPng(svg: string, file: string): Promise<string> {
  const { chromium } = await import('playwright-core')
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined
  try {
    browser = await chromium.launch({
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: ['--no-sandbox', '--disable-background-networking', '--disable-dev-shm-usage', '--no-first-run'],
    })
  } catch (error) {
    const svgFile = file.replace(/\.png$/, '.svg')
    writeFileSync(svgFile, svg)
    process.stderr.write(`[bench] no Chromium (${String(error).split('\n')[0]}): wrote ${svgFile}\n`)
    return svgFile
  }
  try {
    const size = /width="(\d+)" height="(\d+)"/.exec(svg)
    const page = await browser.newPage({
      viewport: { width: Number(size?.[1] ?? 1000), height: Number(size?.[2] ?? 640) },
      deviceScaleFactor: 1,
    })
    await page.setContent(`<!doctype html><html><body style="margin:0">${svg}</body></html>`)
    await page.locator('svg').screenshot({ path: file })
    return file
  } finally {
    await browser.close()
  }
}
