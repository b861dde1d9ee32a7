/**
 * Structural checks JSON.parse does not make: a key repeated in one object (JSON.parse silently
 * keeps the last, so the reading would depend on the producer's key order) and nesting deeper
 * than `maxDepth`. One pass over the text, jumping from string to string with indexOf; key
 * equality is by decoded value, so "a" and "\u0061" are the same key.
 */
export function scanStructure(text: string, maxDepth: number): 'DUPLICATE_KEY' | 'TOO_DEEP' | undefined {
  // One entry per open container: the keys seen so far in an object, or null for an array.
  const stack: (Set<string> | null)[] = []
  let expectKey = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (c === 0x22 /* " */) {
      let end = text.indexOf('"', i + 1)
      while (end !== -1 && isEscaped(text, end)) end = text.indexOf('"', end + 1)
      if (end === -1) return undefined // JSON.parse has already accepted the text
      const top = stack[stack.length - 1]
      if (expectKey && top) {
        const raw = text.slice(i + 1, end)
        const key = raw.includes('\\') ? (JSON.parse(`"${raw}"`) as string) : raw
        if (top.has(key)) return 'DUPLICATE_KEY'
        top.add(key)
        expectKey = false
      }
      i = end
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (stack.length >= maxDepth) return 'TOO_DEEP'
      stack.push(c === 0x7b ? new Set() : null)
      expectKey = c === 0x7b
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      stack.pop()
      expectKey = false
    } else if (c === 0x2c /* , */) {
      expectKey = stack[stack.length - 1] instanceof Set
    }
  }
  return undefined
}

function isEscaped(text: string, quote: number): boolean {
  let backslashes = 0
  for (let j = quote - 1; text.charCodeAt(j) === 0x5c; j--) backslashes++
  return backslashes % 2 === 1
}

/**
 * The common case without a scan: a flat object (no `{` after the first character, no `[`)
 * whose members, counted by commas, are as many as the keys JSON.parse kept, has no key twice.
 * A comma inside a string only makes the count larger, never equal by accident, so any doubt
 * (nesting, a comma in a string, an empty object) answers false and the full scan decides.
 */
export function flatWithoutDuplicates(text: string, keys: number): boolean {
  if (text.indexOf('{', 1) !== -1 || text.indexOf('[') !== -1) return false
  let members = 1
  for (let i = text.indexOf(','); i !== -1; i = text.indexOf(',', i + 1)) members++
  return members === keys
}
