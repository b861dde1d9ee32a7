/** Records per station in the window (GET /stats/counts): a table with a bar per row. */
import { api, type Range, type Station } from '../api.ts'
import { byId, empty, h } from '../dom.ts'
import { failed } from './common.ts'

export async function refreshCounts(catalog: Station[], range: Range, windowLabel: string): Promise<void> {
  const root = byId('counts')
  try {
    const counts = await api.counts(range)
    const max = Math.max(1, ...counts.stations.map((s) => s.records))
    const total = counts.stations.reduce((n, s) => n + s.records, 0)
    const title = (name: string) => catalog.find((s) => s.name === name)?.title ?? name
    const rows = counts.stations.map((s) => {
      const bar = h('span', { class: 'bar' })
      bar.style.width = `${(100 * s.records) / max}%`
      return h(
        'tr',
        { 'data-station': s.station },
        h('th', { scope: 'row' }, title(s.station)),
        h('td', { class: 'bar-cell', 'aria-hidden': 'true' }, bar),
        h('td', { class: 'n' }, s.records.toLocaleString('en')),
      )
    })
    root.replaceChildren(
      h(
        'table',
        { class: 'counts' },
        h('caption', {}, `Readings per station in the last ${windowLabel}`),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'col' }, 'Station'),
            h('td', {}),
            h('th', { scope: 'col', class: 'n' }, 'Records'),
          ),
        ),
        h('tbody', {}, ...rows),
        h(
          'tfoot',
          {},
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, 'Total'),
            h('td', {}),
            h('td', { class: 'n' }, total.toLocaleString('en')),
          ),
        ),
      ),
      total === 0 ? empty(`No readings in the last ${windowLabel}.`) : '',
    )
  } catch (error) {
    failed(root, error)
  }
}
