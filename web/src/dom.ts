/**
 * A few DOM and formatting helpers. Text always goes in through `textContent` (never innerHTML):
 * dead-letter reasons quote whatever bytes reached Kafka.
 */

type Child = Node | string | number | null | undefined | false
type Attrs = Record<string, string | number | boolean | undefined>

/** `h('p', { class: 'x' }, 'text', child)`: an element with attributes and children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue
    el.setAttribute(k, v === true ? '' : String(v))
  }
  el.append(
    ...children.filter((c) => c != null && c !== false).map((c) => (typeof c === 'number' ? String(c) : c)),
  )
  return el as HTMLElementTagNameMap[K]
}

export function byId(id: string): HTMLElement {
  const el = document.getElementById(id)
  if (!el) throw new Error(`#${id} is missing from index.html`)
  return el
}

/** "snake_case_name" → "Snake case name" */
export function label(name: string): string {
  const s = name.replace(/_/g, ' ')
  return s.charAt(0).toUpperCase() + s.slice(1)
}

export function num(v: number | null | undefined, digits = 1): string {
  if (v == null || !Number.isFinite(v)) return '—'
  return v.toLocaleString('en', { minimumFractionDigits: digits, maximumFractionDigits: digits })
}

export function pct(v: number | null | undefined, digits = 1): string {
  return v == null ? '—' : `${num(v * 100, digits)} %`
}

/** A duration in seconds, short: "12 s", "5 min", "3 h", "2 d". */
export function ago(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 90) return `${s} s`
  if (s < 90 * 60) return `${Math.round(s / 60)} min`
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h`
  return `${Math.round(s / 86400)} d`
}

export function clock(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toLocaleTimeString('en-GB')
}

/** A panel's message when there is nothing to show (yet). */
export function empty(text: string): HTMLElement {
  return h('p', { class: 'empty' }, text)
}
