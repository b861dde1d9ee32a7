/**
 * Passwords replaced by `***` wherever connection URLs appear in `text`, in the user-info part
 * (`postgresql://evf:***@host/db`) or as a `password=` parameter: for anything printed or logged.
 */
export const maskPasswords = (text: string): string =>
  text.replace(/(\/\/[^:@/\s]*):[^@/?#\s]+@/g, '$1:***@').replace(/([?&]password=)[^&#\s"]*/gi, '$1***')

/**
 * A copy of `settings` for printing (`evf config`): a password-like setting (`kafkaPassword`, any
 * key naming a password, secret or token) shows `***` when set; URLs have their passwords masked.
 */
export function maskSecrets<T extends object>(settings: T): T {
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(settings)) {
    if (typeof value !== 'string') out[key] = value
    else if (/password|secret|token/i.test(key)) out[key] = value ? '***' : ''
    else out[key] = maskPasswords(value)
  }
  return out as T
}
