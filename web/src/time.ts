import type { Bucket, Range } from './api.ts'

/** The windows the header offers; rollups by the minute up to a day, by the hour beyond. */
export const windows = {
  '15m': { seconds: 15 * 60, bucket: '1m', label: '15 min' },
  '1h': { seconds: 3600, bucket: '1m', label: '1 h' },
  '24h': { seconds: 24 * 3600, bucket: '1m', label: '24 h' },
  '7d': { seconds: 7 * 24 * 3600, bucket: '1h', label: '7 d' },
} as const satisfies Record<string, { seconds: number; bucket: Bucket; label: string }>

export type WindowKey = keyof typeof windows

export const isWindowKey = (k: string | null): k is WindowKey => k != null && k in windows

/** The window ending now, as the API takes it. */
export function rangeOf(key: WindowKey): Range {
  const to = Date.now()
  return { from: new Date(to - windows[key].seconds * 1000).toISOString(), to: new Date(to).toISOString() }
}
