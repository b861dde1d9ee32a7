/**
 * The docs name files that exist, and the README's layout is the tree: a file that moves without
 * its docs, or a new folder under src/ the layout forgets, fails here rather than misleading the
 * next reader.
 */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { describe, it } from 'node:test'
import { repoRoot } from '../../src/shared/paths.ts'

const skip = new Set(['node_modules', 'dist', '.git', '.cache', '.stack', '.test-stack', 'target'])
const tree = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    if (skip.has(e.name)) return []
    const path = join(dir, e.name)
    return e.isDirectory() ? [`${relative(repoRoot, path)}/`, ...tree(path)] : [relative(repoRoot, path)]
  })
const paths = tree(repoRoot)
const exists = (name: string) => paths.some((p) => p === name || p.endsWith(`/${name}`))

const docs = ['README.md', ...readdirSync(join(repoRoot, 'docs')).map((f) => `docs/${f}`)].filter((f) =>
  f.endsWith('.md'),
)

describe('the docs', () => {
  it('name only source files that exist', () => {
    const stale: string[] = []
    for (const doc of docs) {
      const text = readFileSync(join(repoRoot, doc), 'utf8')
      // A source file's name in backticks: `etl/worker.ts`, `scripts/setup.mjs`, `0001_init.sql`.
      for (const [, name] of text.matchAll(/`([\w./-]+\.(?:ts|mjs|py|sql))`/g)) {
        if (!exists(name!.replace(/^\.\//, ''))) stale.push(`${doc}: ${name}`)
      }
    }
    assert.deepEqual(stale, [])
  })
})

describe("the README's layout", () => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8')
  const block = /## Layout\n\n```\n([\s\S]*?)```/.exec(readme)?.[1] ?? ''
  // Each entry is the first word of an indented line under a top-level folder (`src/`).
  const entries = (top: string): string[] => {
    const lines = block.split('\n')
    const start = lines.findIndex((l) => l.startsWith(top))
    const out: string[] = []
    for (const line of lines.slice(start + 1)) {
      if (!line.startsWith(' ')) break
      const word = /^ {2}(\S+)/.exec(line)?.[1]
      if (word) out.push(word)
    }
    return out
  }

  it('is there', () => assert.ok(block.includes('src/'), 'README has no ## Layout block with src/'))

  it('lists every folder and file directly under src/, and nothing that is not there', () => {
    const actual = readdirSync(join(repoRoot, 'src'), { withFileTypes: true })
      .map((e) => (e.isDirectory() ? `${e.name}/` : e.name))
      .sort()
    assert.deepEqual(entries('src/').sort(), actual)
  })

  it('names only top-level entries that exist', () => {
    for (const line of block.split('\n')) {
      const word = /^(\S+)/.exec(line)?.[1]
      if (word) assert.ok(exists(word), `README's layout names ${word}, which is not in the tree`)
    }
  })
})
