/**
 * One card per station: the latest value of each field with its unit, marked against the
 * catalog's spec limits (by colour and by a word, not by colour alone), and the time since the
 * last reading. A station silent for longer than `silentAfterSec` turns red.
 */
import type { Field, Reading, Station } from '../api.ts'
import { ago, byId, h, label, num } from '../dom.ts'

interface Card {
  article: HTMLElement
  age: HTMLElement
  values: Map<string, HTMLElement>
  /** reading time of the latest reading, epoch seconds */
  last: number | null
  id: number
}

export class StationCards {
  private readonly cards = new Map<string, Card>()

  constructor(
    private readonly catalog: Station[],
    private readonly silentAfterSec: number,
  ) {
    const root = byId('stations')
    root.replaceChildren(...catalog.map((s) => this.card(s)))
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
      h('h3', { id: headingId }, station.title),
      age,
      h('dl', {}, ...rows),
    )
    this.cards.set(station.name, { article, age, values, last: null, id: 0 })
    return article
  }

  /** Shows a reading unless the card already shows a newer one (the stream and a refresh race). */
  show(reading: Reading): void {
    const card = this.cards.get(reading.station)
    const station = this.catalog.find((s) => s.name === reading.station)
    if (!card || !station || reading.id < card.id) return
    card.id = reading.id
    card.last = reading.data.timestamp
    card.article.dataset.readingId = String(reading.id)
    for (const f of station.fields) showValue(card.values.get(f.name)!, f, reading.data[f.name])
    this.tick()
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
  if (field.kind === 'enum') {
    const v = typeof value === 'string' ? value : '—'
    dd.replaceChildren(h('span', { class: `outcome outcome-${v.toLowerCase()}` }, v))
    return
  }
  if (typeof value !== 'number') {
    dd.replaceChildren('—')
    return
  }
  const { min, max } = field.spec
  const state = value < min ? 'low' : value > max ? 'high' : 'ok'
  dd.dataset.spec = state
  dd.replaceChildren(
    h('span', { class: 'num' }, num(value, field.precision)),
    field.unit ? h('span', { class: 'unit' }, ` ${field.unit}`) : '',
    h(
      'span',
      { class: 'spec' },
      state === 'ok' ? ` in spec` : state === 'low' ? ' ▼ below spec' : ' ▲ above spec',
      h('span', { class: 'range' }, ` (${num(min, field.precision)}–${num(max, field.precision)})`),
    ),
  )
}
