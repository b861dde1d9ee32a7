/**
 * Individuals chart of one numeric field over the last N readings (GET /sensor-data), with the
 * limits computed in the browser (spc.ts) and points beyond them listed and marked. New readings
 * from the stream are appended as they arrive.
 */
import type uPlot from 'uplot'
import { ApiError, api, type NumericField, type Reading, type Station } from '../api.ts'
import { Chart, colours } from '../chart.ts'
import { byId, clock, empty, h, label, num } from '../dom.ts'
import { individualsChart } from '../spc.ts'
import { failed } from './common.ts'
import { numericFields } from './trends.ts'

const sizes = [50, 100, 250, 500]

export class SpcPanel {
  private readonly field: HTMLSelectElement
  private readonly size: HTMLSelectElement
  private readonly stats = h('dl', { class: 'tiles' })
  private readonly body = h('div', { class: 'chart-body' })
  private readonly alarms = h('div', { class: 'alarms' })
  private chart: Chart | null = null
  /** oldest first */
  private readings: Reading[] = []

  constructor(private readonly catalog: Station[]) {
    this.field = h('select', { id: 'spc-field' })
    for (const s of catalog) {
      const group = h('optgroup', { label: s.title })
      for (const f of numericFields(s))
        group.append(h('option', { value: `${s.name}.${f.name}` }, label(f.name)))
      this.field.append(group)
    }
    this.field.value = 'paint.paint_thickness'
    this.size = h('select', { id: 'spc-size' }, ...sizes.map((n) => h('option', { value: n }, n)))
    this.size.value = '100'
    for (const sel of [this.field, this.size]) {
      sel.addEventListener('change', () => {
        this.drop()
        void this.refresh()
      })
    }
    byId('spc').replaceChildren(
      h(
        'div',
        { class: 'controls' },
        h('label', { for: 'spc-field' }, 'Measurement '),
        this.field,
        h('label', { for: 'spc-size' }, ' last '),
        this.size,
        ' readings',
      ),
      this.stats,
      this.body,
      this.alarms,
    )
  }

  private get selected(): { station: string; field: NumericField } {
    const [station, name] = this.field.value.split('.') as [string, string]
    const s = this.catalog.find((c) => c.name === station)!
    return { station, field: numericFields(s).find((f) => f.name === name)! }
  }

  async refresh(): Promise<void> {
    try {
      const rows = await api.readings(this.selected.station, Number(this.size.value))
      this.readings = rows.reverse()
      this.render()
    } catch (error) {
      if (error instanceof ApiError) this.drop()
      failed(this.body, error)
    }
  }

  /** Readings from the stream: those of the charted station are appended. */
  push(readings: Reading[]): void {
    const { station } = this.selected
    // The stream sends readings in id order.
    const lastId = this.readings[this.readings.length - 1]?.id ?? 0
    const fresh = readings.filter((r) => r.station === station && r.id > lastId)
    if (fresh.length === 0) return
    this.readings = [...this.readings, ...fresh].slice(-Number(this.size.value))
    this.render()
  }

  private render(): void {
    const { field } = this.selected
    const points = this.readings
      .map((r) => ({ r, v: r.data[field.name] }))
      .filter((p): p is { r: Reading; v: number } => typeof p.v === 'number')
    const xs = points.map((p) => p.v)
    const spc = individualsChart(xs, field.spec)
    const d = field.precision + 1
    if (!spc) {
      this.drop()
      this.stats.replaceChildren()
      this.alarms.replaceChildren()
      this.body.replaceChildren(empty('Not enough readings yet: the chart needs at least two.'))
      return
    }
    const tile = (term: string, value: string, cls = '') =>
      h('div', { class: `tile ${cls}` }, h('dt', {}, term), h('dd', {}, value))
    const ooc = spc.outOfControl.length
    this.stats.replaceChildren(
      tile('Cpk', num(spc.cpk, 2), spc.cpk != null && spc.cpk < 1.33 ? 'big warn' : 'big'),
      tile('Cp', num(spc.cp, 2)),
      tile('Mean', num(spc.mean, d)),
      tile('σ (MR̄/d2)', num(spc.sigma, d)),
      tile('UCL / LCL', `${num(spc.ucl, d)} / ${num(spc.lcl, d)}`),
      tile('Out of control', `${ooc} of ${spc.n}`, ooc ? 'alarm' : ''),
    )
    const flat = (v: number) => xs.map(() => v)
    const data: uPlot.AlignedData = [
      xs.map((_, i) => i + 1),
      xs,
      flat(spc.mean),
      flat(spc.ucl),
      flat(spc.lcl),
      flat(field.spec.min),
      flat(field.spec.max),
      xs.map((v, i) => (spc.outOfControl.includes(i) ? v : null)),
    ]
    const text = `Individuals chart of ${label(field.name)}: ${spc.n} readings, ${ooc} out of control, Cpk ${num(spc.cpk, 2)}`
    if (this.chart) this.chart.update(data, text)
    else this.draw(data, text, field)
    this.alarms.replaceChildren(
      ooc
        ? h(
            'ul',
            { 'aria-label': 'Readings out of control' },
            ...spc.outOfControl.map((i) => {
              const { r, v } = points[i]!
              const side = v > spc.ucl ? 'above UCL' : 'below LCL'
              return h(
                'li',
                { 'data-reading-id': r.id },
                `#${i + 1} ${num(v, field.precision)} ${field.unit} at ${clock(r.data.timestamp)} — ${side} (${String(r.data.sensor_id ?? r.station)})`,
              )
            }),
          )
        : h('p', { class: 'muted' }, 'All readings within the control limits.'),
    )
  }

  private draw(data: uPlot.AlignedData, text: string, field: NumericField): void {
    const target = h('div', { class: 'chart', 'data-testid': 'spc-chart' })
    this.body.replaceChildren(target)
    const value = (_u: uPlot, v: number | null) => (v == null ? '—' : num(v, field.precision + 1))
    const limit = (lbl: string, stroke: string, dash: number[]): uPlot.Series => ({
      label: lbl,
      stroke,
      dash,
      width: 1,
      points: { show: false },
      value,
    })
    this.chart = new Chart(
      target,
      {
        label: text,
        time: false,
        series: [
          {
            label: label(field.name),
            stroke: colours.value,
            width: 1.5,
            points: { show: true, size: 4 },
            value,
          },
          limit('centre', colours.band, []),
          limit('UCL', colours.limit, [6, 4]),
          limit('LCL', colours.limit, [6, 4]),
          limit('spec min', colours.spec, [2, 4]),
          limit('spec max', colours.spec, [2, 4]),
          {
            label: 'out of control',
            stroke: colours.fail,
            fill: colours.fail,
            paths: () => null,
            points: { show: true, size: 12, width: 2, stroke: colours.fail, fill: colours.fail },
            value,
          },
        ],
        axes: [{ label: field.unit, size: 70 }],
      },
      data,
    )
  }

  private drop(): void {
    this.chart?.destroy()
    this.chart = null
  }
}
