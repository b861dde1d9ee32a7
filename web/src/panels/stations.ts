/**
 * One card per station taking readings: the latest value of each field with its unit, marked
 * against the catalog's spec limits (by colour and by a word, not by colour alone), and the time
 * since the last reading. A station silent for longer than `silentAfterSec` turns red; one that
 * never had a reading says so. The cards follow the catalog: `setCatalog` rebuilds them, keeping
 * what they showed; a retired station has no card (its history is in the other panels).
 */
import type { Field, Reading, Station } from '../api.ts'
import { specText } from '../catalog.ts'
import { resultColours } from '../chart.ts'
import { ago, byId, empty, h, label, num } from '../dom.ts'

interface Card {
  station: Station
  article: HTMLElement
  age: HTMLElement
  values: Map<string, HTMLElement>
  /** reading time of the latest reading, epoch seconds */
  last: number | null
  id: number
}

export class StationCards {
  private cards = new Map<string, Card>()
  /** the latest reading shown per station: a new catalog version shows them again at once */
  private readonly shown = new Map<string, Reading>()

  constructor(private readonly silentAfterSec: number) {}

  /** The stations to show, in catalog order. */
  setCatalog(catalog: readonly Station[]): void {
    const active = catalog.filter((s) => s.status === 'active')
    this.cards = new Map()
    const root = byId('stations')
    root.replaceChildren(...active.map((s) => this.card(s)))
    if (active.length === 0) root.replaceChildren(empty('No station takes readings in the catalog.'))
    for (const r of this.shown.values()) this.show(r)
  }

  /** The stations with a card. */
  get stations(): string[] {
    return [...this.cards.keys()]
  }

  private card(station: Station): HTMLElement {
    const headingId = `card-${station.name}`
    const age = h('p', { class: 'age' }, 'No reading yet')
    const values = new Map<string, HTMLElement>()
    const rows = station.fields.flatMap((f) => {
      const dd = h('dd', { class: 'value', 'data-field': f.name }, '—')
      values.set(f.name, dd)
      return [h('dt', { title: f.description }, label(f.name)), dd]
    })
    const article = h(
      'article',
      { class: 'card', 'aria-labelledby': headingId, 'data-station': station.name, 'data-state': 'none' },
      h('h3', { id: headingId, title: station.description }, station.title),
      age,
      h('dl', {}, ...rows),
    )
    this.cards.set(station.name, { station, article, age, values, last: null, id: 0 })
    return article
  }

  /** Shows a reading unless the card already shows a newer one (the stream and a refresh race). */
  show(reading: Reading): void {
    if ((this.shown.get(reading.station)?.id ?? 0) <= reading.id) this.shown.set(reading.station, reading)
    const card = this.cards.get(reading.station)
    if (!card || reading.id < card.id) return
    card.id = reading.id
    card.last = reading.data.timestamp
    card.article.dataset.readingId = String(reading.id)
    for (const f of card.station.fields) showValue(card.values.get(f.name)!, f, reading.data[f.name])
    this.tick()
  }

  /**
   * Marks the sensors their source declared offline (a Sparkplug death): a stale value is not a
   * quiet one. The card says which sensors and since when; none clears it.
   */
  markStale(stale: readonly { station: string; sensor_id: string; since: string; reason: string }[]): void {
    for (const card of this.cards.values()) {
      const mine = stale.filter((s) => s.station === card.station.name)
      card.article.querySelector('.stale')?.remove()
      if (mine.length === 0) {
        delete card.article.dataset.stale
        continue
      }
      card.article.dataset.stale = 'true'
      const since = new Date(Math.min(...mine.map((s) => Date.parse(s.since)))).toLocaleTimeString()
      const text = `STALE: ${mine.map((s) => s.sensor_id).join(', ')} offline since ${since} (${mine[0]?.reason})`
      card.age.after(h('p', { class: 'stale error-text', role: 'status', 'data-test': 'stale' }, text))
    }
  }

  /** Re-renders the ages; called every second. */
  tick(now = Date.now() / 1000): void {
    for (const card of this.cards.values()) {
      if (card.last == null) continue
      const since = now - card.last
      const silent = since > this.silentAfterSec
      card.article.dataset.state = silent ? 'silent' : 'ok'
      card.age.textContent = silent ? `Silent for ${ago(since)}` : `Last reading ${ago(since)} ago`
    }
  }
}

function showValue(dd: HTMLElement, field: Field, value: unknown): void {
  delete dd.dataset.spec
  if (field.kind === 'enum') {
    const v = typeof value === 'string' ? value : '—'
    const span = h('span', { class: 'outcome' }, v)
    if (field.pass !== undefined && typeof value === 'string') {
      span.dataset.pass = String(value === field.pass)
      const colour = resultColours(field.values, field.pass).get(value)
      if (colour) span.style.color = colour
    }
    dd.replaceChildren(span)
    return
  }
  if (field.kind === 'boolean') {
    dd.replaceChildren(
      h('span', { class: 'outcome' }, typeof value === 'boolean' ? (value ? 'yes' : 'no') : '—'),
    )
    return
  }
  if (typeof value !== 'number') {
    dd.replaceChildren('—')
    return
  }
  const unit = field.unit ? h('span', { class: 'unit' }, ` ${field.unit}`) : ''
  const shown = h('span', { class: 'num' }, num(value, field.precision))
  // The limits in force now (the newest reading is judged by them); a side may have none.
  const lsl = field.spec?.lsl
  const usl = field.spec?.usl
  if (lsl === undefined && usl === undefined) {
    dd.replaceChildren(shown, unit)
    return
  }
  const state = lsl !== undefined && value < lsl ? 'low' : usl !== undefined && value > usl ? 'high' : 'ok'
  dd.dataset.spec = state
  dd.replaceChildren(
    shown,
    unit,
    h(
      'span',
      { class: 'spec' },
      state === 'ok' ? ` in spec` : state === 'low' ? ' ▼ below spec' : ' ▲ above spec',
      h('span', { class: 'range' }, ` (${specText(lsl, usl, (v) => num(v, field.precision))})`),
    ),
  )
}
