/**
 * The rooms of src/ and who may import whom, as docs/architecture.md draws them: a room imports
 * only rooms on lower rows, through their index.ts. A shortcut (a route reaching into etl/, the
 * db layer importing the ETL) fails here with the file and the import.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from '../../src/shared/paths.ts'

/** The rows of the drawing, top to bottom; the last row's rooms may import each other. */
const rows = [
  ['cli'],
  ['stack'],
  ['orchestrator'],
  ['ingest'],
  ['simulator', 'etl', 'api', 'services'],
  ['alarms'],
  ['kafka', 'db'],
  ['catalog', 'config', 'errors', 'shared'],
]
const rowOf = new Map(rows.flatMap((rooms, i) => rooms.map((r) => [r, i] as const)))
const foundations = rows.length - 1
/**
 * Imported by file on purpose (docs/architecture.md says why): shared/ has no index, and three
 * light modules spare a CLI command the heavy modules of their room's index.
 */
const light = new Set(['api/tokens.ts', 'stack/endpoints.ts', 'kafka/credentials.ts'])
const byFile = (path: string) => path.startsWith('shared/') || light.has(path)

const src = join(repoRoot, 'src')
const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
const roomOf = (path: string) => (path === 'cli.ts' ? 'cli' : path.split('/')[0]!)

describe('the rooms of src/', () => {
  it('are the ones drawn', () => {
    const rooms = readdirSync(src, { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => e.name)
    assert.deepEqual(rooms.sort(), [...rowOf.keys()].sort())
  })

  it('import only rooms on lower rows, through their index.ts', () => {
    const wrong: string[] = []
    for (const file of files(src)) {
      const from = relative(src, file)
      const room = roomOf(from)
      const text = readFileSync(file, 'utf8')
      for (const [, spec] of text.matchAll(/(?:from |import\()'(\.{1,2}\/[^']+)'/g)) {
        const to = relative(src, resolve(dirname(file), spec!))
        const target = roomOf(to)
        if (target === room || to.startsWith('..')) continue
        const [rowFrom, rowTo] = [rowOf.get(room)!, rowOf.get(target)!]
        const lower = rowTo > rowFrom || (rowTo === foundations && rowFrom === foundations)
        if (!lower) wrong.push(`${from} imports ${to}: ${target}/ is not below ${room}/`)
        else if (to !== `${target}/index.ts` && !byFile(to))
          wrong.push(`${from} imports ${to}: import ${target}/index.ts instead`)
      }
    }
    assert.deepEqual(wrong, [])
  })
})
