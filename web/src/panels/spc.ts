/**
 * Individuals chart of one numeric field over the last N readings (GET /sensor-data), with the
 * limits computed in the browser (spc.ts) and points beyond them listed and marked, and the spec
 * limits in force at each reading's time (from GET /stats/timeseries) as step lines. New readings
 * from the stream are appended as they arrive. The measurements offered follow the catalog.
 * Where the measurement's spec or SPC rule raised an alarm (GET /alarms/history), a vertical line
 * at the reading that tripped it, its flag's tooltip saying the rule and why, also listed as text.
 */
import type uPlot from 'uplot'
import {
  type AlarmTransition,
  ApiError,
  api,
  type Limits,
  type NumericField,
  type Reading,
  type Station,
} from '../api.ts'
import { fillMeasurements, findMeasurement, limitsAt } from '../catalog.ts'
import { Chart, colours, type Marker, stepped } from '../chart.ts'
import { byId, clock, empty, h, label, num } from '../dom.ts'
import { type IndividualsChart, individualsChart } from '../spc.ts'
import { failed } from './common.ts'

const sizes = [50, 100, 250, 500]

export class SpcPanel {
  private readonly field: HTMLSelectElement
  private readonly size: HTMLSelectElement
  private readonly stats = h('dl', { class: 'tiles' })
  private readonly body = h('div', { class: 'chart-body' })
  private readonly alarms = h('div', { class: 'alarms' })
  private chart: Chart | null = null
  private catalog: readonly Station[] = []
  /** oldest first */
  private readings: Reading[] = []
  /** the spec limits in force over the readings' time, oldest first */
  private limits: Limits[] = []
  /** the measurement's alarms raised since the oldest reading (its spec and SPC rules) */
  private raises: AlarmTransition[] = []
  private raisesTimer: ReturnType<typeof setTimeout> | undefined

  constructor() {
    this.field = h('select', { id: 'spc-field' })
    this.size = h('select', { id: 'spc-size' }, ...sizes.map((n) => h('option', { value: n }, n)))
    this.size.value = '100'
    for (const sel of [this.field, this.size]) {
      sel.addEventListener('change', () => {
        this.drop()
        this.readings = []
        this.raises = []
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

  /** The measurements to offer; the one charted stays unless it left the catalog. */
  setCatalog(catalog: readonly Station[]): void {
    this.catalog = catalog
    if (fillMeasurements(this.field, catalog)) {
      this.drop()
      this.readings = []
      this.limits = []
      this.raises = []
    }
  }

  private get selected(): { station: string; field: NumericField } | null {
    const m = findMeasurement(this.catalog, this.field.value)
    return m && { station: m.station.name, field: m.field }
  }

  async refresh(): Promise<void> {
    const selected = this.selected
    if (!selected) {
      this.drop()
      this.stats.replaceChildren()
      this.alarms.replaceChildren()
      this.body.replaceChildren(empty('No numeric measurement in the catalog.'))
      return
    }
    const key = this.field.value
    try {
      const rows = (await api.readings(selected.station, Number(this.size.value))).reverse()
      const [limits, raises] = await Promise.all([
        this.limitsOver(selected, rows),
        this.raisesOver(selected, rows),
      ])
      if (this.field.value !== key) return // another measurement was chosen meanwhile
      this.readings = rows
      this.limits = limits
      this.raises = raises ?? this.raises
      this.render()
    } catch (error) {
      if (error instanceof ApiError) this.drop()
      failed(this.body, error)
    }
  }

  /** The limits in force from the oldest reading on (a window of rollups: its `limits`). */
  private async limitsOver(selected: { station: string; field: NumericField }, rows: Reading[]) {
    if (rows.length === 0) return []
    const from = rows[0]!.data.timestamp * 1000
    const to = Math.max(Date.now(), rows[rows.length - 1]!.data.timestamp * 1000) + 1000
    const range = { from: new Date(from).toISOString(), to: new Date(to).toISOString() }
    return (await api.timeseries(selected.station, selected.field.name, '1h', range)).limits
  }

  /**
   * The raises (to UNACK, from NORMAL or RTNUN: a condition tripping, not a shelf expiring) of the
   * measurement's spec and SPC rules since the oldest reading; undefined when they could not be
   * read (the chart goes on without them).
   */
  private async raisesOver(
    selected: { station: string; field: NumericField },
    rows: Reading[],
  ): Promise<AlarmTransition[] | undefined> {
    if (rows.length === 0) return []
    const since = new Date(rows[0]!.data.timestamp * 1000 - 1000).toISOString()
    try {
      const history = await api.alarmHistory(selected.station, since)
      return history
        .filter(
          (e) =>
            e.measurement === selected.field.name &&
            (e.kind === 'spec' || e.kind === 'spc') &&
            e.to === 'UNACK' &&
            (e.from === 'NORMAL' || e.from === 'RTNUN'),
        )
        .reverse()
    } catch {
      return undefined
    }
  }

  /** The alarms changed (`event: alarm`): a raise of the charted measurement is marked soon after. */
  alarmsChanged(): void {
    clearTimeout(this.raisesTimer)
    this.raisesTimer = setTimeout(async () => {
      const selected = this.selected
      if (!selected || this.readings.length === 0) return
      const key = this.field.value
      const raises = await this.raisesOver(selected, this.readings)
      if (this.field.value !== key || raises === undefined) return
      this.raises = raises
      this.render()
    }, 300)
  }

  /** Readings from the stream: those of the charted station are appended. */
  push(readings: Reading[]): void {
    const selected = this.selected
    if (!selected) return
    const { station } = selected
    // The stream sends readings in id order.
    const lastId = this.readings[this.readings.length - 1]?.id ?? 0
    const fresh = readings.filter((r) => r.station === station && r.id > lastId)
    if (fresh.length === 0) return
    this.readings = [...this.readings, ...fresh].slice(-Number(this.size.value))
    this.render()
  }

  private render(): void {
    const { field } = this.selected!
    const points = this.readings
      .map((r) => ({ r, v: r.data[field.name] }))
      .filter((p): p is { r: Reading; v: number } => typeof p.v === 'number')
    const xs = points.map((p) => p.v)
    // Each reading is drawn against the limits of its time; the capability is the newest one's.
    const inForce = points.map((p) => limitsAt(this.limits, p.r.data.timestamp))
    const newest = inForce[inForce.length - 1]
    const spc = individualsChart(xs, { min: newest?.lsl ?? undefined, max: newest?.usl ?? undefined })
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
      inForce.map((l) => l?.lsl ?? null),
      inForce.map((l) => l?.usl ?? null),
      xs.map((v, i) => (spc.outOfControl.includes(i) ? v : null)),
    ]
    const raised = this.raisesAt(points.map((p) => p.r.data.timestamp * 1000))
    const raisedText = raised.length
      ? `, ${raised.length} ${raised.length === 1 ? 'alarm' : 'alarms'} raised`
      : ''
    const text = `Individuals chart of ${label(field.name)}: ${spc.n} readings, ${ooc} out of control, Cpk ${num(spc.cpk, 2)}${raisedText}`
    if (this.chart) this.chart.update(data, text)
    else this.draw(data, text, field)
    this.chart?.setMarkers(raised)
    this.listAlarms(points, spc, field, raised)
  }

  /** The raises and the readings out of control, as text. */
  private listAlarms(
    points: { r: Reading; v: number }[],
    spc: IndividualsChart,
    field: NumericField,
    raised: Marker[],
  ): void {
    const ooc = spc.outOfControl.length
    this.alarms.replaceChildren(
      raised.length
        ? h(
            'ul',
            { class: 'raises', 'aria-label': 'Alarms raised' },
            ...raised.map((m) => h('li', { 'data-x': m.x }, `⚑ #${m.x} ${m.title}`)),
          )
        : '',
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

  /**
   * The raises as markers at the reading each one was raised at (a raise's time is its reading's):
   * the nearest within a second; one outside the readings charted is left out.
   */
  private raisesAt(times: readonly number[]): Marker[] {
    if (times.length === 0) return []
    const first = times[0]!
    const last = times[times.length - 1]!
    return this.raises.flatMap((e) => {
      const at = Date.parse(e.at)
      if (at < first - 1000 || at > last + 1000) return []
      let best = 0
      times.forEach((t, i) => {
        if (Math.abs(t - at) < Math.abs(times[best]! - at)) best = i
      })
      const why = e.reason.replace(/^raised: /, '')
      return [
        {
          x: best + 1,
          flag: e.kind === 'spc' ? '⚑ SPC' : '⚑ spec',
          title: `${e.rule} raised at ${clock(at / 1000)}: ${why}`,
        },
      ]
    })
  }

  private draw(data: uPlot.AlignedData, text: string, field: NumericField): void {
    const target = h('div', { class: 'chart', 'data-testid': 'spc-chart' })
    this.body.replaceChildren(target)
    const value = (_u: uPlot, v: number | null) => (v == null ? '—' : num(v, field.precision + 1))
    const limit = (lbl: string, stroke: string, dash: number[], paths?: uPlot.Series.PathBuilder) => ({
      label: lbl,
      stroke,
      dash,
      width: 1,
      points: { show: false },
      value,
      ...(paths ? { paths } : {}),
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
          limit('LSL', colours.spec, [2, 4], stepped),
          limit('USL', colours.spec, [2, 4], stepped),
          {
            label: 'out of control',
            stroke: colours.alarm,
            fill: colours.alarm,
            paths: () => null,
            points: { show: true, size: 12, width: 2, stroke: colours.alarm, fill: colours.alarm },
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
