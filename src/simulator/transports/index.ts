import type { Config } from '../../config/index.ts'
import type { DeviceTransport, OpenTransport, TransportOptions } from './types.ts'

export type { DeviceTransport, TransportOptions } from './types.ts'

/** Each transport's module, loaded only when the simulator uses it (node-opcua alone takes 0.5 s and 150 MB). */
const transports: Record<Exclude<Config['simTransport'], 'kafka'>, () => Promise<OpenTransport>> = {
  mqtt: async () => (await import('./mqtt.ts')).open,
  sparkplug: async () => (await import('./sparkplug.ts')).open,
  opcua: async () => (await import('./opcua.ts')).open,
}

/** Opens the device transport `simTransport` names (not kafka: the simulator's own producer). */
export async function openTransport(options: TransportOptions): Promise<DeviceTransport> {
  const kind = options.config.simTransport
  if (kind === 'kafka')
    throw new Error('the kafka transport is the simulator’s producer, not a device transport')
  return (await transports[kind]())(options)
}
