/**
 * The alarms not NORMAL (GET /alarms, then every `event: alarm` of the stream), most severe and
 * newest first, and the banner's counts from the same list. Each row: severity, station,
 * measurement, rule, ISA-18.2 state in words, value and since; unacknowledged ones in bold with
 * their severity's colour (ISA-101 discourages blinking). Acknowledge (UNACK, RTNUN), shelve and
 * unshelve through an inline form, with the dashboard session's scope `operate`; the API's
 * refusal (problem+json) is shown in the form. Rows are updated in place, so a live update
 * neither closes the form an operator is filling in nor moves the focus.
 */

import { actionsFor, alarmKey, STATE_WORDS, UNACKNOWLEDGED } from '../alarms.ts'
import { type Alarm, ApiError, api, type Station } from '../api.ts'
import { findMeasurement } from '../catalog.ts'
import { byId, empty, h, label, num } from '../dom.ts'
import { AlarmBanner } from './alarm-banner.ts'
import { ACTION_WORDS, actionForm, type FormAction } from './alarm-form.ts'
import { failed } from './common.ts'

interface Row {
  tr: HTMLTableRowElement
  /** the alarm as last drawn (JSON): the row is redrawn only when it changes */
  drawn: string
  /** the open form's row, if any */
  form?: { action: FormAction; tr: HTMLTableRowElement }
}

const COLUMNS = ['Severity', 'Station', 'Measurement', 'Rule', 'State', 'Value', 'Since', 'Actions']

export class AlarmsPanel {
  private readonly banner = new AlarmBanner(byId('alarm-banner'))
  private readonly root = byId('alarms')
  private readonly status = h('p', { class: 'alarm-status', role: 'status' })
  private readonly tbody = h('tbody')
  private readonly table = h(
    'table',
    { class: 'alarm-list' },
    h('caption', {}, 'Alarms not normal, most severe and newest first'),
    h('thead', {}, h('tr', {}, ...COLUMNS.map((c) => h('th', { scope: 'col' }, c)))),
    this.tbody,
  )
  private readonly none = empty(
    'No alarms: every rule’s condition is normal, nothing shelved or out of service.',
  )
  private readonly rows = new Map<string, Row>()
  private catalog: readonly Station[] = []
  private alarms: readonly Alarm[] = []
  /** bumped by every live list: an answer to a request sent before one is older than it */
  private generation = 0

  /** `changed` hears of every new list (the SPC chart marks the raises of its measurement). */
  constructor(private readonly changed: (alarms: readonly Alarm[]) => void) {
    this.root.replaceChildren(this.status, empty('Loading the alarms…'))
  }

  setCatalog(catalog: readonly Station[]): void {
    this.catalog = catalog
    for (const row of this.rows.values()) row.drawn = '' // station titles and units may have changed
    this.show(this.alarms)
  }

  /** The alarms from the stream (`event: alarm`). */
  live(alarms: Alarm[]): void {
    this.generation++
    this.show(alarms)
  }

  /** The periodic fallback, and after an action: GET /alarms. */
  async refresh(): Promise<void> {
    const asked = this.generation
    try {
      const alarms = await api.alarms()
      if (asked === this.generation) this.show(alarms)
    } catch (error) {
      if (this.rows.size === 0) failed(this.root, error)
    }
  }

  private show(alarms: readonly Alarm[]): void {
    this.alarms = alarms
    this.banner.show(alarms)
    this.render()
    this.changed(alarms)
  }

  private render(): void {
    const keep = new Set(this.alarms.map(alarmKey))
    for (const key of this.rows.keys()) if (!keep.has(key)) this.rows.delete(key)
    const wanted: HTMLTableRowElement[] = []
    for (const a of this.alarms) {
      const key = alarmKey(a)
      let row = this.rows.get(key)
      if (!row) {
        row = { tr: h('tr'), drawn: '' }
        this.rows.set(key, row)
      }
      const drawn = JSON.stringify(a)
      if (drawn !== row.drawn) {
        this.drawRow(row, a)
        row.drawn = drawn
      }
      wanted.push(row.tr)
      if (row.form) wanted.push(row.form.tr)
    }
    place(this.tbody, wanted)
    const content = this.alarms.length ? this.table : this.none
    if (this.root.lastChild !== content || this.root.childNodes.length !== 2)
      this.root.replaceChildren(this.status, content)
  }

  private drawRow(row: Row, a: Alarm): void {
    const unack = UNACKNOWLEDGED.includes(a.state)
    const attrs = {
      'data-rule': a.rule,
      'data-subject': a.subject,
      'data-state': a.state,
      'data-severity': a.severity,
      class: unack ? 'unack' : '',
    }
    for (const [k, v] of Object.entries(attrs)) row.tr.setAttribute(k, v)
    const m =
      a.station && a.measurement ? findMeasurement(this.catalog, `${a.station}.${a.measurement}`) : null
    const title = this.catalog.find((s) => s.name === a.station)?.title ?? a.station ?? 'Pipeline'
    const state =
      a.state === 'SHELVED' && a.shelved_until
        ? `Shelved until ${when(a.shelved_until)}`
        : STATE_WORDS[a.state]
    const value =
      a.value == null
        ? '—'
        : a.kind === 'stale'
          ? `silent ${num(a.value, 0)} s`
          : m
            ? `${num(a.value, m.field.precision)} ${m.field.unit}`
            : num(a.value, 2)
    row.tr.replaceChildren(
      h('td', { class: 'sev' }, h('span', { class: 'sev-tag' }, label(a.severity))),
      h('td', {}, title),
      h('td', {}, a.measurement ? label(a.measurement) : a.subject ? `sensor ${a.subject}` : '—'),
      h('td', {}, h('code', {}, a.rule)),
      h('td', { class: 'state', title: a.state }, state),
      h('td', { class: 'n' }, value),
      h('td', {}, h('time', { datetime: a.since, title: a.since }, when(a.since))),
      h(
        'td',
        { class: 'actions' },
        ...actionsFor(a.state).map((action) => {
          const b = h('button', { type: 'button', 'data-action': action }, ACTION_WORDS[action])
          b.addEventListener('click', () => this.open(a, action))
          return b
        }),
      ),
    )
  }

  /** Opens the inline form of `action` under the alarm's row (one form per alarm). */
  private open(a: Alarm, action: FormAction): void {
    const row = this.rows.get(alarmKey(a))
    if (!row) return
    if (row.form?.action !== action) {
      const form = actionForm(a, action, {
        submit: (comment, minutes) => this.act(a, action, comment, minutes),
        cancel: () => this.close(a),
      })
      row.form = {
        action,
        tr: h('tr', { class: 'form-row' }, h('td', { colspan: COLUMNS.length }, form)),
      }
      this.render()
    }
    row.form?.tr.querySelector('input')?.focus()
  }

  private close(a: Alarm): void {
    const row = this.rows.get(alarmKey(a))
    if (!row?.form) return
    row.form = undefined
    this.render()
    row.tr.querySelector('button')?.focus()
  }

  /** Does it; answers the API's reason when refused. After it, the list is read again. */
  private async act(a: Alarm, action: FormAction, comment: string, minutes: number): Promise<string | null> {
    try {
      const done =
        action === 'acknowledge'
          ? await api.acknowledge(a.rule, a.subject, comment)
          : action === 'shelve'
            ? await api.shelve(a.rule, a.subject, comment, minutes)
            : await api.unshelve(a.rule, a.subject, comment)
      this.close(a)
      this.status.textContent = `${ACTION_WORDS[action]}: ${done.rule}${done.subject ? ` (${done.subject})` : ''} is now ${STATE_WORDS[done.to].toLowerCase()}.`
      await this.refresh()
      return null
    } catch (error) {
      if (error instanceof ApiError)
        return `${ACTION_WORDS[action]} refused (${error.status}): ${error.detail || error.title}`
      return `${ACTION_WORDS[action]} failed: the API did not answer`
    }
  }
}

/** Puts `nodes` in `parent` in this order, moving only those out of place (a focused one stays). */
function place(parent: HTMLElement, nodes: readonly Node[]): void {
  let at = parent.firstChild
  for (const node of nodes) {
    if (node === at) at = at.nextSibling
    else parent.insertBefore(node, at)
  }
  while (at) {
    const next = at.nextSibling
    at.remove()
    at = next
  }
}

/** A time of day, with the date when it is not today. */
function when(iso: string): string {
  const d = new Date(iso)
  const time = d.toLocaleTimeString('en-GB')
  return d.toDateString() === new Date().toDateString()
    ? time
    : `${d.toLocaleDateString('en-GB', { day: 'numeric', month: 'short' })} ${time}`
}
