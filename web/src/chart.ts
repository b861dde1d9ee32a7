/**
 * uPlot with the dashboard's theme, sized to its container and kept sized. uPlot draws on a
 * canvas, so each chart also gets a text summary (`aria-label`) for screen readers.
 */
import uPlot from 'uplot'
import 'uplot/dist/uPlot.min.css'
import { h } from './dom.ts'

export const colours = {
  text: '#d7dde4',
  grid: '#2b3541',
  value: '#5cb8ff',
  band: '#8b98a8',
  limit: '#ff9f43',
  spec: '#ff5c5c',
  pass: '#3ddc97',
  alarm: '#ff6b6b',
  defects: '#c792ea',
  raise: '#e0a3ff',
}

/** The results other than the pass value, in catalog order: red and amber first, as ever. */
const resultPalette = ['#ff6b6b', '#f6c945', '#ff9f43', '#c792ea', '#5cb8ff', '#4dd0e1', '#f78fb3']

/**
 * A colour per result of an inspection: the pass value green, the others from the palette in the
 * catalog's order. The station cards and the quality panel agree, whatever the results are.
 */
export function resultColours(values: readonly string[], pass: string | undefined): Map<string, string> {
  const others = values.filter((v) => v !== pass)
  return new Map([
    ...(pass === undefined ? [] : [[pass, colours.pass] as const]),
    ...others.map((v, i) => [v, resultPalette[i % resultPalette.length]!] as const),
  ])
}

/** A line that holds its value until the next point: spec limits change at a point in time. */
export const stepped = uPlot.paths.stepped!({ align: 1 })

const axis = (extra: uPlot.Axis = {}): uPlot.Axis => ({
  stroke: colours.text,
  grid: { stroke: colours.grid, width: 1 },
  ticks: { stroke: colours.grid, width: 1 },
  font: '13px system-ui, sans-serif',
  ...extra,
})

export interface ChartSpec {
  label: string
  series: uPlot.Series[]
  /** y axes after the x axis (default: one, on the left) */
  axes?: uPlot.Axis[]
  scales?: uPlot.Scales
  /** x in epoch seconds (default) or a plain number (the SPC chart's reading number) */
  time?: boolean
}

/**
 * A vertical line at `x` with a flag whose title (a tooltip) says what happened there: an alarm
 * raised, on the SPC chart. Drawn as elements over the canvas, so the flag can be hovered.
 */
export interface Marker {
  x: number
  flag: string
  title: string
}

/**
 * A chart in `target` that follows its width. `update` keeps a zoomed-in view where the user
 * left it: a refresh every few seconds must not undo their drag-zoom.
 */
export class Chart {
  readonly plot: uPlot
  private zoomed = false
  private readonly resize: ResizeObserver
  private markers: readonly Marker[] = []
  private markerLayer: HTMLElement | undefined
  /** what the markers show now: redrawn only when it changes (a hovered tooltip stays) */
  private placed = ''

  constructor(
    readonly target: HTMLElement,
    spec: ChartSpec,
    data: uPlot.AlignedData,
  ) {
    target.setAttribute('role', 'img')
    target.setAttribute('aria-label', spec.label)
    const time = spec.time ?? true
    this.plot = new uPlot(
      {
        width: Math.max(200, target.clientWidth),
        height: chartHeight(),
        scales: { x: { time }, ...spec.scales },
        series: [{ label: time ? 'time' : 'reading' }, ...spec.series],
        axes: [axis(), ...(spec.axes ?? [{}]).map((a) => axis(a))],
        cursor: { drag: { x: true, y: false } },
        legend: { live: true },
        hooks: {
          setScale: [
            (u, key) => {
              if (key !== 'x') return
              const xs = u.data[0]
              const { min, max } = u.scales.x!
              this.zoomed =
                xs.length > 1 && min != null && max != null && (min > xs[0]! || max < xs[xs.length - 1]!)
            },
          ],
          // Markers follow every redraw: new data, a zoom, a new width.
          draw: [() => this.placeMarkers()],
        },
      },
      data,
      target,
    )
    this.markerLayer = h('div', { class: 'chart-markers' })
    this.plot.over.append(this.markerLayer)
    // Only on a change of width: setting the size changes the height, which would notify again.
    this.resize = new ResizeObserver(() => {
      const width = Math.max(200, target.clientWidth)
      if (width !== this.plot.width) this.plot.setSize({ width, height: chartHeight() })
    })
    this.resize.observe(target)
  }

  update(data: uPlot.AlignedData, label: string): void {
    this.target.setAttribute('aria-label', label)
    this.plot.setData(data, !this.zoomed)
  }

  setMarkers(markers: readonly Marker[]): void {
    this.markers = markers
    this.placeMarkers()
  }

  private placeMarkers(): void {
    const layer = this.markerLayer
    if (!layer) return
    const { min, max } = this.plot.scales.x!
    const shown = this.markers
      .filter((m) => min != null && max != null && m.x >= min && m.x <= max)
      .map((m) => ({ ...m, left: Math.round(this.plot.valToPos(m.x, 'x')) }))
    // A flag near the right edge hangs to the left of its line, inside the chart.
    const flipAfter = layer.clientWidth - 80
    const placed = JSON.stringify([flipAfter, shown])
    if (placed === this.placed) return
    this.placed = placed
    layer.replaceChildren(
      ...shown.map((m) => {
        const line = h(
          'div',
          { class: m.left > flipAfter ? 'chart-marker flip' : 'chart-marker', 'data-x': m.x },
          h('span', { class: 'chart-marker-flag', title: m.title }, m.flag),
        )
        line.style.left = `${m.left}px`
        return line
      }),
    )
  }

  destroy(): void {
    this.resize.disconnect()
    this.plot.destroy()
  }
}

/** Tall enough to read from across the room; scales with the root font size. */
function chartHeight(): number {
  const rem = Number.parseFloat(getComputedStyle(document.documentElement).fontSize) || 16
  return Math.round(rem * 15)
}

/** Epoch seconds of an ISO timestamp. */
export const seconds = (iso: string): number => Date.parse(iso) / 1000
