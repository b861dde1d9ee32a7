import { mkdirSync } from 'node:fs'
import { dirname } from 'node:path'

/**
 * Makes the directory `dir` with `mode` (0700: it holds secrets), and its missing parents with
 * the default mode. `mkdirSync(dir, { recursive: true, mode })` would give `mode` to every
 * directory it creates: a data directory made that way first is closed to PostgreSQL, which runs
 * as its own user when we are root, and its initdb fails (issue 19). An existing `dir` is kept.
 */
export function mkdirPrivate(dir: string, mode = 0o700): void {
  mkdirSync(dirname(dir), { recursive: true })
  // The parent exists now: only `dir` itself can be created here, and `recursive` tolerates it existing.
  mkdirSync(dir, { recursive: true, mode })
}
