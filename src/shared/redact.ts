/**
 * Passwords replaced by `***` wherever connection URLs appear in `text`, in the user-info part
 * (`postgresql://evf:***@host/db`) or as a `password=` parameter: for anything printed or logged.
 */
export const maskPasswords = (text: string): string =>
  text.replace(/(\/\/[^:@/\s]*):[^@/?#\s]+@/g, '$1:***@').replace(/([?&]password=)[^&#\s"]*/gi, '$1***')
