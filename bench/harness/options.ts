/** A benchmark's options: flags and environment variables read and checked the same way everywhere. */

/** An integer ≥ 1 given as `--name`, or the error naming the flag. */
export function positiveInt(name: string, v: string | undefined): number {
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, got ${v}`)
  return n
}

/** A number > 0 given as `--name`. */
export function positive(name: string, v: string): number {
  const n = Number(v)
  if (!Number.isFinite(n) || n <= 0) throw new Error(`--${name} must be a positive number, got ${v}`)
  return n
}

/** An integer ≥ 1 from the environment variable `name`, `fallback` when it is unset or empty. */
export function envInt(name: string, fallback: number): number {
  const v = process.env[name]
  if (v === undefined || v === '') return fallback
  const n = Number(v)
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got ${v}`)
  return n
}

/** `300`, `300s`, `5m`, `1h`, `1m30s` given as `--name` → seconds */
export function duration(name: string, v: string | undefined): number {
  const parts = [...(v ?? '').matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h)?/g)]
  const joined = parts.map((p) => p[0]).join('')
  if (!v || parts.length === 0 || joined !== v)
    throw new Error(`--${name}: a duration like 300, 45s, 5m or 1h; got ${v}`)
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600 } as const
  return parts.reduce((n, p) => n + Number(p[1]) * unit[(p[2] ?? 's') as keyof typeof unit], 0)
}
