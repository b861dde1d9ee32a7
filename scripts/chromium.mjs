#!/usr/bin/env node
// Makes sure Debian's Chromium is installed for the browser tests (test/browser/): they drive it
// with playwright-core, which downloads no browser of its own. Installs the `chromium` package
// with apt-get when it is missing (refreshing the package lists once if the first try fails).
// Plain Node, no dependencies; exits non-zero with a message saying what to do when it cannot.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const chromiumPath = '/usr/bin/chromium'
const say = (msg) => process.stderr.write(`[chromium] ${msg}\n`)

function found() {
  if (existsSync(chromiumPath)) return true
  return spawnSync('sh', ['-c', 'command -v chromium'], { stdio: 'ignore' }).status === 0
}

function apt(args) {
  say(`apt-get ${args.join(' ')}…`)
  const r = spawnSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  if (r.error) return false
  return r.status === 0
}

function ensureChromium() {
  if (found()) return
  const t0 = Date.now()
  say('Chromium is not installed; installing the Debian package `chromium` for the browser tests')
  const installed =
    apt(['install', '-y', '--no-install-recommends', 'chromium']) ||
    (apt(['update']) && apt(['install', '-y', '--no-install-recommends', 'chromium']))
  if (!installed || !found()) {
    say(
      'ERROR: could not install Chromium. Install it yourself (as root: `apt-get update && apt-get install -y chromium`) ' +
        `so that ${chromiumPath} exists, then run the tests again.`,
    )
    process.exit(1)
  }
  say(`installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}

ensureChromium()
