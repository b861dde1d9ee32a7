/**
 * Pipeline health (GET /pipeline/status): ingest rate, consumer lag, the last ETL run and its
 * result, the dead letters of the window with their reasons, and the alarm notifications'
 * delivery per receiver.
 */
import { api, type PipelineStatus, type Range } from '../api.ts'
import { ago, byId, empty, h, num } from '../dom.ts'
import { failed } from './common.ts'

/** Renders the panel and hands the status on (the banner shows a stalled ETL). */
export async function refreshPipeline(
  range: Range,
  windowLabel: string,
  onStatus: (p: PipelineStatus) => void,
): Promise<void> {
  const root = byId('pipeline')
  try {
    const p = await api.pipeline(range)
    render(root, p, windowLabel)
    onStatus(p)
  } catch (error) {
    failed(root, error)
  }
}

/** One sentence for Kafka nodes that are down, for the banner; null when all run. */
export const kafkaText = (p: PipelineStatus): string | null => {
  if (p.kafka.down === 0) return null
  const down = p.kafka.nodes.filter((n) => !n.up).map((n) => n.node_id)
  return p.kafka.quorum_lost
    ? `Kafka: nodes ${down.join(', ')} of ${p.kafka.nodes.length} are down — production is stalled until one returns`
    : `Kafka: node ${down.join(', ')} is down and being restarted; the cluster goes on`
}

/** One sentence for device sources that are down, for the banner; null when all are up. */
export const sourcesText = (p: PipelineStatus): string | null => {
  const down = p.sources.filter((s) => !s.up)
  if (down.length === 0) return null
  return `Devices: ${down
    .map(
      (s) =>
        `${s.source} (${s.stations.join(', ')}) ${s.connected ? 'ingest is not running' : 'disconnected'}${s.last_error ? `: ${s.last_error}` : ''}`,
    )
    .join('; ')} — their readings are not arriving`
}

/** A tile per device source: connected or not, and what it brought in. */
const sourceTiles = (
  p: PipelineStatus,
  tile: (term: string, value: string, cls?: string, test?: string) => HTMLElement,
) =>
  p.sources.map((s) =>
    tile(
      `Devices: ${s.source}`,
      `${s.up ? 'connected' : 'DOWN'} · ${s.messages_in.toLocaleString('en')} in${s.missed ? ` · ${s.missed.toLocaleString('en')} missed` : ''}`,
      s.up ? '' : 'alarm',
      `source-${s.source}`,
    ),
  )

/**
 * One sentence for a stalled ETL, for the panel and the banner: a partition held back at a record
 * batch that cannot be decoded is named with its reason (a restart cannot help it).
 */
export const stallText = (p: PipelineStatus): string => {
  const held = p.lag.partitions.filter((x) => x.blocked_reason)
  if (held.length > 0)
    return `ETL stalled on ${held.map((x) => `${x.topic}[${x.partition}]`).join(', ')}: ${
      held[0]?.blocked_reason
    }; the other partitions go on loading`
  return `ETL stalled: ${p.lag.total.toLocaleString('en')} messages wait and nothing was committed for ${
    p.etl.seconds_since == null ? 'ever' : ago(p.etl.seconds_since)
  } (limit ${p.etl.stall_sec} s); its workers are being restarted`
}

function render(root: HTMLElement, p: PipelineStatus, windowLabel: string): void {
  // A refresh must not fold up what the reader unfolded.
  const open = new Set([...root.querySelectorAll<HTMLElement>('details[open]')].map((d) => d.dataset.key))
  const tile = (term: string, value: string, cls = '', test?: string) =>
    h('div', { class: `tile ${cls}`, 'data-test': test }, h('dt', {}, term), h('dd', {}, value))
  const run = p.etl.last_run
  const commit = p.etl.seconds_since == null ? 'never' : `${ago(p.etl.seconds_since)} ago`
  root.replaceChildren(
    h(
      'dl',
      { class: 'tiles' },
      tile('ETL', p.etl.stalled ? 'STALLED' : 'OK', p.etl.stalled ? 'alarm' : ''),
      ...sourceTiles(p, tile),
      ...(p.kafka.nodes.length
        ? [
            tile(
              'Kafka nodes',
              `${p.kafka.nodes.length - p.kafka.down} of ${p.kafka.nodes.length} up`,
              p.kafka.quorum_lost ? 'alarm' : p.kafka.down ? 'warn' : '',
            ),
          ]
        : []),
      // Now, from the last seconds' commits: the window's average is not the rate (issue 19).
      tile(
        `Ingest, last ${p.ingest.current_sec} s`,
        `${num(p.ingest.current_rows_per_second, 1)} rows/s`,
        'big',
        'ingest-now',
      ),
      tile(`Rows, last ${windowLabel}`, p.ingest.rows.toLocaleString('en')),
      tile(`Average, last ${windowLabel}`, `${num(p.ingest.rows_per_second, 1)} rows/s`),
      tile('Consumer lag', `${p.lag.total.toLocaleString('en')} messages`, p.lag.total > 1000 ? 'warn' : ''),
      tile('Last ETL commit', commit),
      tile(
        'Last ETL run',
        run
          ? `${run.status.toUpperCase()} · ${run.mode} · ${run.rows.toLocaleString('en')} rows`
          : 'none yet',
        run?.status === 'failed' ? 'alarm' : '',
      ),
      tile(
        `Dead letters, last ${windowLabel}`,
        p.dead_letters.total.toLocaleString('en'),
        p.dead_letters.total ? 'warn' : '',
      ),
    ),
    p.etl.stalled ? h('p', { class: 'error-text', 'data-test': 'stalled' }, stallText(p)) : '',
    run?.error ? h('p', { class: 'error-text' }, `Last run failed: ${run.error}`) : '',
    notifications(p),
    deadLetters(p, windowLabel, open.has('recent')),
    p.lag.partitions.length ? lagTable(p, open.has('lag')) : '',
  )
}

const RECEIVER_NAMES: Record<string, string> = { email: 'e-mail', webhook: 'webhook' }

/**
 * One line per receiver: "e-mail: 3 sent, 1 pending for 2 min (last error: connection refused)".
 * The error shown is a pending or given-up message's: a sent one's old error is history.
 */
export function deliveryText(deliveries: PipelineStatus['alarms']['deliveries'], receiver: string): string {
  const of = (status: string) => deliveries.find((d) => d.receiver === receiver && d.status === status)
  const [sent, pending, expired] = [of('sent'), of('pending'), of('expired')]
  const parts = [`${sent?.messages ?? 0} sent`]
  if (pending) {
    const since = pending.oldest_pending ? (Date.now() - Date.parse(pending.oldest_pending)) / 1000 : null
    parts.push(`${pending.messages} pending${since === null ? '' : ` for ${ago(since)}`}`)
  }
  if (expired) parts.push(`${expired.messages} given up after 24 h`)
  const error = (pending?.last_error ?? expired?.last_error)?.replace(/^Error: /, '')
  return `${RECEIVER_NAMES[receiver] ?? receiver}: ${parts.join(', ')}${error ? ` (last error: ${error})` : ''}`
}

/** The watchdog's line: shown only when an evaluator ran and stopped ticking (nobody would be told). */
export function evaluationText(e: PipelineStatus['alarms']['evaluation']): string | undefined {
  if (e.evaluating || e.heartbeat_age_sec === null) return undefined
  return `Alarms are not being evaluated: the evaluator (${e.holder ?? 'none'}) last ticked ${Math.round(e.heartbeat_age_sec)} s ago, ${e.behind} readings behind`
}

function notifications(p: PipelineStatus): HTMLElement {
  const stopped = evaluationText(p.alarms.evaluation)
  const list = deliveryList(p)
  if (!stopped) return list
  return h(
    'div',
    {},
    h('p', { class: 'error-text', role: 'alert', 'data-test': 'alarm-evaluation' }, stopped),
    list,
  )
}

function deliveryList(p: PipelineStatus): HTMLElement {
  const { deliveries } = p.alarms
  const receivers = [...new Set(deliveries.map((d) => d.receiver))]
  if (receivers.length === 0)
    return h('p', { class: 'muted', 'data-test': 'notifications' }, 'Alarm notifications: none sent yet.')
  return h(
    'div',
    { class: 'notifications', 'data-test': 'notifications' },
    h('h3', {}, 'Alarm notifications'),
    h(
      'ul',
      {},
      ...receivers.map((r) => {
        const failing = deliveries.some((d) => d.receiver === r && d.status === 'pending' && d.last_error)
        const expired = deliveries.some((d) => d.receiver === r && d.status === 'expired')
        return h(
          'li',
          { 'data-receiver': r, class: expired ? 'error-text' : failing ? 'warn-text' : '' },
          deliveryText(deliveries, r),
        )
      }),
    ),
  )
}

function deadLetters(p: PipelineStatus, windowLabel: string, open: boolean): HTMLElement {
  if (p.dead_letters.total === 0) return empty(`No dead letters in the last ${windowLabel}.`)
  return h(
    'div',
    { class: 'dead-letters' },
    h(
      'table',
      {},
      h('caption', {}, 'Dead letters by reason'),
      h(
        'thead',
        {},
        h('tr', {}, h('th', { scope: 'col' }, 'Reason'), h('th', { scope: 'col', class: 'n' }, 'Count')),
      ),
      h(
        'tbody',
        {},
        ...p.dead_letters.by_reason.map((r) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, h('code', {}, r.reason_code)),
            h('td', { class: 'n' }, r.count),
          ),
        ),
      ),
    ),
    h(
      'details',
      { 'data-key': 'recent', open },
      h('summary', {}, `Most recent (${p.dead_letters.recent.length})`),
      h(
        'ul',
        { class: 'recent' },
        ...p.dead_letters.recent.map((d) =>
          h('li', {}, h('code', {}, d.reason_code), ` ${d.topic}[${d.partition}]@${d.offset}: ${d.reason}`),
        ),
      ),
    ),
  )
}

function lagTable(p: PipelineStatus, open: boolean): HTMLElement {
  return h(
    'details',
    { 'data-key': 'lag', open },
    h('summary', {}, `Lag per partition (${p.lag.partitions.length})`),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          h('th', { scope: 'col' }, 'Topic'),
          h('th', { scope: 'col', class: 'n' }, 'Partition'),
          h('th', { scope: 'col', class: 'n' }, 'Lag'),
          h('th', { scope: 'col' }, 'State'),
        ),
      ),
      h(
        'tbody',
        {},
        ...p.lag.partitions.map((x) =>
          h(
            'tr',
            {},
            h('td', {}, x.topic),
            h('td', { class: 'n' }, x.partition),
            h('td', { class: 'n' }, x.lag),
            h(
              'td',
              { class: x.stalled ? 'error-text' : '', title: x.blocked_reason ?? '' },
              x.blocked_reason ? 'held back' : x.stalled ? 'stalled' : '',
            ),
          ),
        ),
      ),
    ),
  )
}
