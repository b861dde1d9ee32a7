/**
 * A plant's OPC UA server for the tests: plain node-opcua, no code of src/, run as its own
 * process (`node --import tsx test/opcua-server.ts <port> <pki dir> <open|secure>`) so a test
 * can SIGKILL and restart it. Three paint-booth variables with good initial values. Driven by
 * lines on stdin: `set <Name> <value> <good|bad|uncertain>` (answers `ok <Name>`) and `rss`.
 * `open`: security None and SignAndEncrypt, anonymous. `secure`: only SignAndEncrypt with
 * Basic256Sha256, user `evf`/`s3cret`, and unknown client certificates rejected (they land in
 * `<pki>/rejected/` until moved to `<pki>/trusted/certs/`).
 */
import { createInterface } from 'node:readline'
import {
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  type UAVariable,
  Variant,
} from 'node-opcua'

const [port = '48400', pki = '/tmp/evf-opcua-pki', mode = 'open'] = process.argv.slice(2)
const secure = mode === 'secure'
const manager = (folder: string) =>
  new OPCUACertificateManager({
    rootFolder: `${pki}/${folder}`,
    automaticallyAcceptUnknownCertificate: !secure,
    // secure: watch trusted/ so that a certificate an operator moves there is trusted without a restart
    disableFileWatchers: !secure,
  })
const serverCertificateManager = manager('server-pki')
const userCertificateManager = manager('user-pki')
await serverCertificateManager.initialize()
await userCertificateManager.initialize()

const server = new OPCUAServer({
  port: Number(port),
  hostname: '127.0.0.1',
  serverCertificateManager,
  userCertificateManager,
  securityModes: secure
    ? [MessageSecurityMode.SignAndEncrypt]
    : [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
  securityPolicies: secure
    ? [SecurityPolicy.Basic256Sha256]
    : [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
  allowAnonymous: !secure,
  userManager: { isValidUser: (user: string, password: string) => user === 'evf' && password === 's3cret' },
  buildInfo: { productName: 'evf-test-plc' },
})
await server.initialize()
const addressSpace = server.engine.addressSpace!
const ns = addressSpace.getOwnNamespace()
const folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: 'Paint' })
const variables: Record<string, UAVariable> = {}
for (const [name, low, high, initial] of [
  ['BoothTemp', -10, 60, 22],
  ['Humidity', 0, 100, 60],
  ['Thickness', 0, 10, 1.15],
] as const) {
  variables[name] = ns.addAnalogDataItem({
    organizedBy: folder,
    browseName: name,
    nodeId: `s=Paint.${name}`,
    dataType: 'Double',
    engineeringUnitsRange: { low, high },
  })
  variables[name].setValueFromSource(
    new Variant({ dataType: DataType.Double, value: initial }),
    StatusCodes.Good,
  )
}
await server.start()
const rss = () => Math.round(process.memoryUsage().rss / 1e6)
console.log(JSON.stringify({ ready: server.getEndpointUrl(), rssMb: rss() }))

const statuses = {
  good: StatusCodes.Good,
  bad: StatusCodes.BadSensorFailure,
  uncertain: StatusCodes.UncertainLastUsableValue,
}
createInterface({ input: process.stdin }).on('line', (line) => {
  const [cmd, name = '', value = '', status = 'good'] = line.trim().split(/\s+/)
  if (cmd === 'rss') return console.log(JSON.stringify({ rssMb: rss() }))
  const node = variables[name]
  if (cmd !== 'set' || !node) return console.log(`unknown ${line}`)
  node.setValueFromSource(
    new Variant({ dataType: DataType.Double, value: Number(value) }),
    statuses[status as keyof typeof statuses],
  )
  console.log(`ok ${name}`)
})
process.on('SIGTERM', () => void server.shutdown(0).then(() => process.exit(0)))
