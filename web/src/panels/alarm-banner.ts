/**
 * The alarm banner under the header: the annunciated alarms (UNACK, ACKED, RTNUN: what
 * `GET /alarms?state=active` answers) counted by severity, and how many wait for an
 * acknowledgement. A polite live region: a screen reader hears it when the counts change, not on
 * every event that leaves them as they were. Severity is a word and a number as well as a colour.
 */

import { countAlarms, SEVERITIES } from '../alarms.ts'
import type { Alarm } from '../api.ts'
import { h } from '../dom.ts'

export class AlarmBanner {
  /** what the banner says now: it is redrawn only when that changes */
  private said = ''

  constructor(private readonly root: HTMLElement) {
    root.setAttribute('role', 'status')
    root.setAttribute('aria-live', 'polite')
    root.setAttribute('aria-atomic', 'true')
  }

  /** The alarms not NORMAL, as `GET /alarms` and `event: alarm` give them. */
  show(alarms: readonly Alarm[]): void {
    const counts = countAlarms(alarms)
    const said = JSON.stringify(counts)
    if (said === this.said) return
    this.said = said
    this.root.hidden = false
    // Its colour: its most severe alarm's, stronger while any waits for acknowledgement.
    this.root.dataset.worst = SEVERITIES.find((s) => counts.bySeverity[s] > 0) ?? 'none'
    this.root.dataset.unack = String(counts.unacknowledged > 0)
    if (counts.total === 0) {
      this.root.replaceChildren(h('span', { class: 'ab-title' }, 'No active alarms'))
      return
    }
    this.root.replaceChildren(
      h('span', { class: 'ab-title' }, `${counts.total} active ${counts.total === 1 ? 'alarm' : 'alarms'}:`),
      h(
        'ul',
        { class: 'ab-counts', 'aria-label': 'Active alarms by severity' },
        ...SEVERITIES.map((s) =>
          h(
            'li',
            { class: 'sev-chip', 'data-severity': s, 'data-count': counts.bySeverity[s] },
            h('span', { class: 'n' }, counts.bySeverity[s]),
            ` ${s}`,
          ),
        ),
      ),
      h(
        'span',
        { class: 'ab-unack', 'data-count': counts.unacknowledged },
        counts.unacknowledged === 0 ? 'all acknowledged' : `${counts.unacknowledged} unacknowledged`,
      ),
      h('a', { href: '#alarms-h' }, 'Alarm list'),
    )
  }
}
