/**
 * End-of-line quality over the window (GET /quality/summary): first-pass yield, the outcome
 * mix, defects per inspection, and the outcomes and yield per bucket.
 */
import type uPlot from 'uplot'
import { ApiError, api, type Outcome, type QualitySummary, type Range } from '../api.ts'
import { Chart, colours, seconds } from '../chart.ts'
import { byId, empty, h, num, pct } from '../dom.ts'
import { type WindowKey, windows } from '../time.ts'
import { failed } from './common.ts'

const outcomes: Outcome[] = ['PASS', 'REWORK', 'FAIL']

export class QualityPanel {
  private readonly stats = h('dl', { class: 'tiles' })
  private readonly body = h('div', { class: 'chart-body' })
  private chart: Chart | null = null
  private bucket = ''

  constructor() {
    byId('quality').replaceChildren(this.stats, this.body)
  }

  async refresh(range: Range, window: WindowKey): Promise<void> {
    const bucket = windows[window].bucket
    try {
      const q = await api.quality(bucket, range)
      this.tiles(q)
      if (q.inspections === 0 || q.series.length === 0) {
        this.drop()
        this.body.replaceChildren(empty(`No inspections in the last ${windows[window].label}.`))
        return
      }
      const data: uPlot.AlignedData = [
        q.series.map((p) => seconds(p.t)),
        ...outcomes.map((o) => q.series.map((p) => p[o])),
        q.series.map((p) => {
          const n = p.PASS + p.FAIL + p.REWORK
          return n ? (100 * p.PASS) / n : null
        }),
      ]
      const text = `Inspections per ${bucket === '1m' ? 'minute' : 'hour'} by outcome and first-pass yield: ${q.inspections} inspections, yield ${pct(q.first_pass_yield)}`
      if (this.chart && this.bucket === bucket) return this.chart.update(data, text)
      this.drop()
      const target = h('div', { class: 'chart', 'data-testid': 'quality-chart' })
      this.body.replaceChildren(target)
      const stroke = { PASS: colours.pass, REWORK: colours.rework, FAIL: colours.fail }
      this.chart = new Chart(
        target,
        {
          label: text,
          series: [
            ...outcomes.map((o, i) => ({
              label: o,
              stroke: stroke[o],
              width: 2,
              dash: [[], [6, 3], [2, 3]][i],
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
      this.bucket = bucket
    } catch (error) {
      if (error instanceof ApiError) this.drop()
      failed(this.body, error)
    }
  }

  private tiles(q: QualitySummary): void {
    const tile = (term: string, value: string, cls = '') =>
      h('div', { class: `tile ${cls}` }, h('dt', {}, term), h('dd', {}, value))
    this.stats.replaceChildren(
      tile('First-pass yield', pct(q.first_pass_yield), 'big'),
      tile('Inspections', q.inspections.toLocaleString('en')),
      ...outcomes.map((o) =>
        tile(o, `${q.counts[o].toLocaleString('en')} (${pct(q.rates[o])})`, `outcome-${o.toLowerCase()}`),
      ),
      tile('Defects per inspection', num(q.defects.per_inspection, 2)),
    )
  }

  private drop(): void {
    this.chart?.destroy()
    this.chart = null
    this.bucket = ''
  }
}
