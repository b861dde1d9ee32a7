#!/usr/bin/env node
// Makes sure the Debian packages some tests need are installed: `node scripts/debian.mjs PKG…`,
// each package named as the command it provides (chromium for the browser tests, driven by
// playwright-core, which downloads no browser of its own; openssl for the Kafka TLS test's
// independent check of the broker's certificate); `package:command` when they differ
// (`mosquitto-clients:mosquitto_pub`). Installs the missing ones with apt-get
// (refreshing the package lists once if the first try fails); does nothing when all are there.
// Plain Node, no dependencies; exits non-zero with a message saying what to do when it cannot.
import { spawnSync } from 'node:child_process'

const wanted = process.argv.slice(2).map((arg) => {
  const [pkg, command = pkg] = arg.split(':')
  return { pkg, command }
})
const say = (msg) => process.stderr.write(`[debian] ${msg}\n`)
// /usr/sbin too: Debian puts daemons there (mosquitto), and not every user's PATH has it.
const found = ({ command }) =>
  spawnSync('sh', ['-c', `PATH="$PATH:/usr/sbin:/sbin" command -v ${command}`], { stdio: 'ignore' })
    .status === 0

function apt(args) {
  say(`apt-get ${args.join(' ')}…`)
  const r = spawnSync('apt-get', args, {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
  })
  return !r.error && r.status === 0
}

const missing = wanted.filter((pkg) => !found(pkg))
if (missing.length > 0) {
  const t0 = Date.now()
  const names = missing.map((m) => m.pkg)
  say(`not installed: ${names.join(', ')}; installing the Debian packages`)
  const install = ['install', '-y', '--no-install-recommends', ...names]
  const installed = apt(install) || (apt(['update']) && apt(install))
  const still = missing.filter((pkg) => !found(pkg))
  if (!installed || still.length > 0) {
    say(
      `ERROR: could not install ${(still.length ? still : missing).map((m) => m.pkg).join(', ')}. Install them yourself (as root: ` +
        `\`apt-get update && apt-get install -y ${names.join(' ')}\`), then run again.`,
    )
    process.exit(1)
  }
  say(`installed in ${((Date.now() - t0) / 1000).toFixed(1)} s`)
}
