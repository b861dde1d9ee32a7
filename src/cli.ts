#!/usr/bin/env node
import { fileURLToPath } from 'node:url'
import { errorCodes } from './errors/index.ts'

// The `evf` command's entry (package.json `bin`); its commands are in cli/, one file per group.

// The Kafka client (zstd from node:zlib) and the project need Node 24.6+. npm's scripts run on the
// pinned Node 26 (node_modules/.bin/node); `node dist/cli.js` with an older Node stops here.
const [nodeMajor = 0, nodeMinor = 0] = process.versions.node.split('.').map(Number)
if (nodeMajor < 24 || (nodeMajor === 24 && nodeMinor < 6)) {
  process.stderr.write(
    `evf: PREREQUISITE_MISSING: Node.js 24.6+ is required (this is ${process.version}): run it as \`npm run evf -- …\` or with node_modules/.bin/node, the Node.js 26 \`npm ci\` installs\n`,
  )
  process.exit(errorCodes.PREREQUISITE_MISSING.exitCode)
}

const { main } = await import('./cli/main.ts')
main(fileURLToPath(import.meta.url))
