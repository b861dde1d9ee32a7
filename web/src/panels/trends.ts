/**
 * Any numeric field of any station over the window, from the rollups (GET /stats/timeseries):
 * mean per bucket with the bucket's min and max, and the spec limits in force at each bucket's
 * time. The measurements offered follow the catalog. Drag to zoom.
 */
import type uPlot from 'uplot'
import { ApiError, api, type Limits, type Range, type Station } from '../api.ts'
import { fillMeasurements, findMeasurement, limitsAt, specText } from '../catalog.ts'
import { Chart, colours, seconds, stepped } from '../chart.ts'
import { byId, empty, h, label, num } from '../dom.ts'
import type { WindowKey } from '../time.ts'
import { windows } from '../time.ts'
import { failed } from './common.ts'

export class TrendsPanel {
  private readonly select: HTMLSelectElement
  private readonly body = h('div', { class: 'chart-body' })
  private chart: Chart | null = null
  private chartKey = ''
  private last: { range: Range; window: WindowKey } | null = null
  private catalog: readonly Station[] = []

  constructor() {
    this.select = h('select', { id: 'trend-field' })
    this.select.addEventListener('change', () => {
      if (this.last) void this.refresh(this.last.range, this.last.window)
    })
    byId('trends').replaceChildren(
      h('div', { class: 'controls' }, h('label', { for: 'trend-field' }, 'Measurement '), this.select),
      this.body,
    )
  }

  /** The measurements to offer; the one charted stays unless it left the catalog. */
  setCatalog(catalog: readonly Station[]): void {
    this.catalog = catalog
    fillMeasurements(this.select, catalog)
  }

  async refresh(range: Range, window: WindowKey): Promise<void> {
    this.last = { range, window }
    const chosen = findMeasurement(this.catalog, this.select.value)
    if (!chosen) {
      this.drop()
      this.body.replaceChildren(empty('No numeric measurement in the catalog.'))
      return
    }
    const { field } = chosen
    const station = chosen.station.name
    const fieldName = field.name
    const bucket = windows[window].bucket
    try {
      const ts = await api.timeseries(station, fieldName, bucket, range)
      if (ts.points.length === 0) {
        this.drop()
        this.body.replaceChildren(empty(`No ${label(fieldName).toLowerCase()} readings in this window.`))
        return
      }
      const p = ts.points
      const data: uPlot.AlignedData = [
        p.map((x) => seconds(x.t)),
        p.map((x) => x.mean),
        p.map((x) => x.min),
        p.map((x) => x.max),
        ...specLines(p, ts.limits),
      ]
      const latest = p[p.length - 1]!
      const now = ts.limits[ts.limits.length - 1]
      const spec = specText(now?.lsl, now?.usl, (v) => String(v))
      const text = `${label(fieldName)} (${field.unit}), mean per ${bucket === '1m' ? 'minute' : 'hour'}: ${p.length} points, latest ${num(latest.mean, field.precision)}; ${spec ? `spec ${spec}` : 'no spec limits'}`
      const key = `${station}.${fieldName}.${bucket}`
      if (this.chart && this.chartKey === key) {
        this.chart.update(data, text)
        return
      }
      this.drop()
      const target = h('div', { class: 'chart', 'data-testid': 'trend-chart' })
      this.body.replaceChildren(target)
      const unit = field.unit
      const fmt = (_u: uPlot, v: number | null) => (v == null ? '—' : `${num(v, field.precision)} ${unit}`)
      const limit = (lbl: string): uPlot.Series => ({
        label: lbl,
        stroke: colours.spec,
        width: 1,
        dash: [8, 6],
        paths: stepped,
        points: { show: false },
        value: fmt,
      })
      this.chart = new Chart(
        target,
        {
          label: text,
          series: [
            { label: 'mean', stroke: colours.value, width: 2, value: fmt },
            { label: 'min', stroke: colours.band, width: 1, dash: [4, 4], value: fmt },
            { label: 'max', stroke: colours.band, width: 1, dash: [4, 4], value: fmt },
            limit('LSL'),
            limit('USL'),
          ],
          axes: [{ label: unit, size: 70 }],
        },
        data,
      )
      this.chartKey = key
    } catch (error) {
      if (error instanceof ApiError) this.drop()
      failed(this.body, error)
    }
  }

  private drop(): void {
    this.chart?.destroy()
    this.chart = null
    this.chartKey = ''
  }
}

/**
 * The spec limits as two step lines, each point's bucket judged by the limits in force at its time
 * (a limit changed today does not move yesterday's line). A side is left out (all null) when it
 * lies far from the data: an upper limit at 10× the readings would flatten the trend.
 */
function specLines(
  points: { t: string; min: number; max: number }[],
  limits: readonly Limits[],
): (number | null)[][] {
  const lo = Math.min(...points.map((p) => p.min))
  const hi = Math.max(...points.map((p) => p.max))
  const reach = 2 * Math.max(hi - lo, Math.abs(hi) * 0.01, 1e-9)
  const near = (v: number | null | undefined) => v != null && v >= lo - reach && v <= hi + reach
  const inForce = points.map((p) => limitsAt(limits, seconds(p.t)))
  return (['lsl', 'usl'] as const).map((side) => {
    const line = inForce.map((l) => l?.[side] ?? null)
    return line.some(near) ? line : line.map(() => null)
  })
}
