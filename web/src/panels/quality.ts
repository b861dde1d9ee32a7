/**
 * End-of-line quality over the window (GET /quality/summary) of the catalog's inspection station:
 * first-pass yield, the mix of results, defects per inspection, and the results and yield per
 * bucket. The results are the catalog's (the inspection field's values, its `pass` value counting
 * as first-pass): a new catalog version may change them, or leave no inspection at all.
 */
import type uPlot from 'uplot'
import { ApiError, api, type QualitySummary, type Range, type Station } from '../api.ts'
import { type Inspection, inspectionOf } from '../catalog.ts'
import { Chart, colours, resultColours, seconds } from '../chart.ts'
import { byId, empty, h, num, pct } from '../dom.ts'
import { type WindowKey, windows } from '../time.ts'
import { failed } from './common.ts'

const dashes = [[], [6, 3], [2, 3], [10, 4, 2, 4], [1, 6]]

/** Inspections with `result` in a bucket of the series (0 when the API left it out). */
const countOf = (p: QualitySummary['series'][number], result: string): number =>
  Number((p as Record<string, unknown>)[result] ?? 0)

export class QualityPanel {
  private readonly stats = h('dl', { class: 'tiles' })
  private readonly body = h('div', { class: 'chart-body' })
  private chart: Chart | null = null
  private chartKey = ''
  private inspection: Inspection | null = null

  constructor() {
    byId('quality').replaceChildren(this.stats, this.body)
  }

  setCatalog(catalog: readonly Station[]): void {
    this.inspection = inspectionOf(catalog)
    if (!this.inspection) {
      this.drop()
      this.stats.replaceChildren()
      this.body.replaceChildren(empty('No station of the catalog has an inspection result.'))
    }
  }

  /** The results, pass value first, then the others in catalog order. */
  private get results(): string[] {
    const { values, pass } = this.inspection!.field
    return [pass, ...values.filter((v) => v !== pass)]
  }

  async refresh(range: Range, window: WindowKey): Promise<void> {
    const inspection = this.inspection
    if (!inspection) return
    const bucket = windows[window].bucket
    try {
      const q = await api.quality(inspection.station.name, bucket, range)
      if (inspection !== this.inspection) return // a new catalog version meanwhile
      this.tiles(q)
      if (q.inspections === 0 || q.series.length === 0) {
        this.drop()
        this.body.replaceChildren(empty(`No inspections in the last ${windows[window].label}.`))
        return
      }
      const results = this.results
      const { pass } = inspection.field
      const data: uPlot.AlignedData = [
        q.series.map((p) => seconds(p.t)),
        ...results.map((r) => q.series.map((p) => countOf(p, r))),
        q.series.map((p) => {
          const n = results.reduce((sum, r) => sum + countOf(p, r), 0)
          return n ? (100 * countOf(p, pass)) / n : null
        }),
      ]
      const text = `Inspections per ${bucket === '1m' ? 'minute' : 'hour'} by result and first-pass yield: ${q.inspections} inspections, yield ${pct(q.first_pass_yield)}`
      const key = `${inspection.station.name}|${bucket}|${results.join('|')}`
      if (this.chart && this.chartKey === key) return this.chart.update(data, text)
      this.drop()
      const target = h('div', { class: 'chart', 'data-testid': 'quality-chart' })
      this.body.replaceChildren(target)
      const stroke = resultColours(inspection.field.values, pass)
      this.chart = new Chart(
        target,
        {
          label: text,
          series: [
            ...results.map((r, i) => ({
              label: r,
              stroke: stroke.get(r)!,
              width: 2,
              dash: dashes[i % dashes.length]!,
            })),
            {
              label: 'first-pass yield',
              scale: '%',
              stroke: colours.text,
              width: 1,
              value: (_u: uPlot, v: number | null) => (v == null ? '—' : `${num(v)} %`),
            },
          ],
          scales: { '%': { range: [0, 100] } },
          axes: [
            { label: 'inspections', size: 60 },
            { scale: '%', side: 1, label: 'yield %', grid: { show: false }, size: 60 },
          ],
        },
        data,
      )
      this.chartKey = key
    } catch (error) {
      if (error instanceof ApiError) this.drop()
      failed(this.body, error)
    }
  }

  private tiles(q: QualitySummary): void {
    const { values, pass } = this.inspection!.field
    const colour = resultColours(values, pass)
    const tile = (term: string, value: string, cls = '') =>
      h('div', { class: `tile ${cls}` }, h('dt', {}, term), h('dd', {}, value))
    const result = (r: string) => {
      const t = tile(r, `${(q.counts[r] ?? 0).toLocaleString('en')} (${pct(q.rates[r])})`, 'outcome')
      t.dataset.pass = String(r === pass)
      t.querySelector('dd')!.style.color = colour.get(r) ?? ''
      return t
    }
    this.stats.replaceChildren(
      tile('First-pass yield', pct(q.first_pass_yield), 'big'),
      tile('Inspections', q.inspections.toLocaleString('en')),
      ...this.results.map(result),
      tile('Defects per inspection', num(q.defects.per_inspection, 2)),
    )
  }

  private drop(): void {
    this.chart?.destroy()
    this.chart = null
    this.chartKey = ''
  }
}
