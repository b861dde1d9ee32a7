/**
 * Any numeric field of any station over the window, from the rollups (GET /stats/timeseries):
 * mean per bucket with the bucket's min and max, and the spec limits. Drag to zoom.
 */
import type uPlot from 'uplot'
import { ApiError, api, type NumericField, type Range, type Station } from '../api.ts'
import { Chart, colours, seconds } from '../chart.ts'
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

  constructor(private readonly catalog: Station[]) {
    this.select = h('select', { id: 'trend-field' })
    for (const s of catalog) {
      const group = h('optgroup', { label: s.title })
      for (const f of numericFields(s))
        group.append(h('option', { value: `${s.name}.${f.name}` }, label(f.name)))
      this.select.append(group)
    }
    this.select.value = 'paint.paint_thickness'
    this.select.addEventListener('change', () => {
      if (this.last) void this.refresh(this.last.range, this.last.window)
    })
    byId('trends').replaceChildren(
      h('div', { class: 'controls' }, h('label', { for: 'trend-field' }, 'Measurement '), this.select),
      this.body,
    )
  }

  async refresh(range: Range, window: WindowKey): Promise<void> {
    this.last = { range, window }
    const [station, fieldName] = this.select.value.split('.') as [string, string]
    const field = numericFields(this.catalog.find((s) => s.name === station)!).find(
      (f) => f.name === fieldName,
    )!
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
        ...specLines(p, field),
      ]
      const latest = p[p.length - 1]!
      const text = `${label(fieldName)} (${field.unit}), mean per ${bucket === '1m' ? 'minute' : 'hour'}: ${p.length} points, latest ${num(latest.mean, field.precision)}; spec ${field.spec.min}–${field.spec.max}`
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
      this.chart = new Chart(
        target,
        {
          label: text,
          series: [
            { label: 'mean', stroke: colours.value, width: 2, value: fmt },
            { label: 'min', stroke: colours.band, width: 1, dash: [4, 4], value: fmt },
            { label: 'max', stroke: colours.band, width: 1, dash: [4, 4], value: fmt },
            { label: 'spec min', stroke: colours.spec, width: 1, dash: [8, 6], points: { show: false } },
            { label: 'spec max', stroke: colours.spec, width: 1, dash: [8, 6], points: { show: false } },
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
 * The spec limits as two flat lines, each left out (all null) when it lies far from the data:
 * insulation resistance's upper limit is 10× its readings and would flatten the trend.
 */
function specLines(points: { min: number; max: number }[], field: NumericField): (number | null)[][] {
  const lo = Math.min(...points.map((p) => p.min))
  const hi = Math.max(...points.map((p) => p.max))
  const reach = 2 * Math.max(hi - lo, Math.abs(hi) * 0.01, 1e-9)
  return [field.spec.min, field.spec.max].map((limit) =>
    points.map(() => (limit >= lo - reach && limit <= hi + reach ? limit : null)),
  )
}

export function numericFields(s: Station): NumericField[] {
  return s.fields.filter((f): f is NumericField => f.kind !== 'enum')
}
