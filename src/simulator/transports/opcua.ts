/**
 * `--sim-transport opcua`: the simulator hosts an OPC UA server at `opcuaUrl` with one variable
 * per sensor and measurement (`simNodeId`), and sets their values as it reads; `evf ingest`
 * subscribes to them like to a plant's server. node-opcua is heavy: index.ts loads this module
 * only for this transport.
 */
import { resolve } from 'node:path'
import {
  type BaseNode,
  DataType,
  MessageSecurityMode,
  OPCUACertificateManager,
  OPCUAServer,
  SecurityPolicy,
  StatusCodes,
  type UAVariable,
  Variant,
} from 'node-opcua'
import type { Measurement, SensorMessage, Station } from '../../catalog/index.ts'
import type { Config } from '../../config/index.ts'
import { PipelineError } from '../../errors/index.ts'
import { simNodeId } from '../devices.ts'
import type { OpenTransport, TransportOptions } from './types.ts'

const DEFAULT_URL = 'opc.tcp://127.0.0.1:4840'
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1'])

interface SimVariable {
  node: UAVariable
  dataType: DataType
}

const dataTypeOf = (m: Measurement): DataType =>
  m.type === 'number'
    ? DataType.Double
    : m.type === 'integer'
      ? DataType.Int32
      : m.type === 'boolean'
        ? DataType.Boolean
        : DataType.String

/**
 * Certificates under `<dataDir>/opcua/server-pki` (and the users' under `user-pki`, never
 * `~/.config`). A client's certificate is trusted automatically only when the server listens on
 * loopback (the demo on one machine); otherwise an operator moves it from `rejected/` to
 * `trusted/certs/`.
 */
async function certificates(config: Config, loopback: boolean) {
  const make = async (folder: string) => {
    const manager = new OPCUACertificateManager({
      rootFolder: resolve(config.dataDir, 'opcua', folder),
      automaticallyAcceptUnknownCertificate: loopback,
      disableFileWatchers: true,
    })
    await manager.initialize()
    return manager
  }
  return {
    serverCertificateManager: await make('server-pki'),
    userCertificateManager: await make('user-pki'),
  }
}

function userOptions(config: Config) {
  if (!config.opcuaUsername) return { allowAnonymous: true }
  return {
    allowAnonymous: false,
    userManager: {
      isValidUser: (user: string, password: string) =>
        user === config.opcuaUsername && password === config.opcuaPassword,
    },
  }
}

async function startServer(config: Config, options: TransportOptions): Promise<OPCUAServer> {
  const url = new URL((config.opcuaUrl || DEFAULT_URL).replace(/^opc\.tcp:/, 'http:'))
  const loopback = LOOPBACK.has(url.hostname)
  const server = new OPCUAServer({
    port: Number(url.port || 4840),
    hostname: url.hostname.replace(/^\[|\]$/g, ''),
    ...(await certificates(config, loopback)),
    securityModes: [MessageSecurityMode.None, MessageSecurityMode.SignAndEncrypt],
    securityPolicies: [SecurityPolicy.None, SecurityPolicy.Basic256Sha256],
    ...userOptions(config),
    buildInfo: { productName: 'evf-simulator', manufacturerName: 'evf' },
  })
  await server.initialize()
  options.log.debug({ loopback }, 'OPC UA server initialised')
  return server
}

/** One variable per sensor × measurement, in a folder per station, at the node ids `simNodeId` names. */
function addVariables(server: OPCUAServer, options: TransportOptions): Map<string, SimVariable> {
  const addressSpace = server.engine.addressSpace!
  const ns = addressSpace.getOwnNamespace()
  if (ns.index !== 1)
    throw new PipelineError(
      'CONFIG_INVALID',
      `the OPC UA server's namespace is ${ns.index}, not 1 as simNodeId says`,
    )
  const folders = new Map<string, BaseNode>()
  const variables = new Map<string, SimVariable>()
  for (const { id: sensor, station } of options.sensors) {
    let folder = folders.get(station.id)
    if (!folder) {
      folder = ns.addFolder(addressSpace.rootFolder.objects, { browseName: station.id })
      folders.set(station.id, folder)
    }
    for (const m of station.measurements) {
      const nodeId = simNodeId(station.id, sensor, m.name)
      const dataType = dataTypeOf(m)
      const common = {
        componentOf: folder,
        browseName: `${sensor}.${m.name}`,
        nodeId: nodeId.replace(/^ns=1;/, ''),
        dataType: DataType[dataType],
      }
      const node =
        'range' in m && m.range
          ? ns.addAnalogDataItem({
              ...common,
              engineeringUnitsRange: { low: m.range.min, high: m.range.max },
            })
          : ns.addVariable(common)
      variables.set(nodeId, { node, dataType })
    }
  }
  return variables
}

/** Sets each reading's values with the reading's time as their source time. */
function setValues(
  variables: Map<string, SimVariable>,
  station: Station | undefined,
  reading: SensorMessage,
): void {
  if (!station) return
  const time = new Date(reading.timestamp * 1000)
  for (const m of station.measurements) {
    const v = variables.get(simNodeId(station.id, reading.sensor_id, m.name))
    const value = reading[m.name]
    if (!v || value === undefined) continue
    v.node.setValueFromSource(new Variant({ dataType: v.dataType, value }), StatusCodes.Good, time)
  }
}

export const open: OpenTransport = async (options) => {
  const { config, log } = options
  const server = await startServer(config, options)
  const variables = addVariables(server, options)
  await server.start()
  log.info(
    {
      endpoint: server.getEndpointUrl(),
      variables: variables.size,
      users: config.opcuaUsername ? 1 : 'anonymous',
    },
    'simulator’s OPC UA server listening',
  )
  return {
    async send(readings) {
      const catalog = options.catalog()
      for (const r of readings) setValues(variables, catalog.station(r.station), r)
    },
    async close() {
      await server.shutdown(0)
    },
  }
}
