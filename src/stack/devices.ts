import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import type { Catalog } from '../catalog/index.ts'
import { type Config, settings } from '../config/index.ts'
import { type EmbeddedMqtt, freePort, mosquittoBinary, startEmbeddedMosquitto } from '../services/index.ts'
import type { Logger } from '../shared/log.ts'
import { repoRoot } from '../shared/paths.ts'

/** What the devices' side of the stack needs: a broker, a server, `evf ingest`. */
export interface DeviceNeeds {
  /** a station reads MQTT (JSON or Sparkplug B), from the catalog or the simulator's transport */
  mqtt: boolean
  /** a station reads OPC UA */
  opcua: boolean
}

/** Whether `catalog` (with the simulator's transport, when it runs) has sources, and of which kinds. */
export function deviceNeeds(config: Config, catalog: Catalog): DeviceNeeds {
  const kinds = new Set(catalog.stations.flatMap((s) => (s.source ? [s.source.type] : [])))
  if (config.simulator && config.simTransport !== 'kafka') kinds.add(config.simTransport)
  return { mqtt: kinds.has('mqtt') || kinds.has('sparkplug'), opcua: kinds.has('opcua') }
}

/** Where the devices are, once the stack has started what it starts for them. */
export interface DeviceEndpoints {
  /** the MQTT broker: the plant's (`mqttUrl`) or the embedded Mosquitto */
  mqttUrl: string
  /** the OPC UA server: the plant's (`opcuaUrl`), or where the simulator serves its nodes */
  opcuaUrl: string
  /** the embedded broker, when the stack started one */
  mqtt?: EmbeddedMqtt
  /** what the catalog and the simulator's transport need: `evf ingest` runs when anything */
  needs: DeviceNeeds
  stop(): Promise<void>
}

/**
 * Starts Debian's Mosquitto when a station reads MQTT and no `mqttUrl` is set (installing it with
 * apt-get first when it is missing, as the tests install Chromium), and picks the port the
 * simulator serves OPC UA on when it plays OPC UA devices and no `opcuaUrl` is set.
 */
export async function startDeviceEndpoints(
  config: Config,
  needs: DeviceNeeds,
  log: Logger,
): Promise<DeviceEndpoints> {
  let mqtt: EmbeddedMqtt | undefined
  if (needs.mqtt && !config.mqttUrl) {
    if (!mosquittoBinary()) installMosquitto(log)
    mqtt = await startEmbeddedMosquitto({ dataDir: config.dataDir, log })
  }
  const opcuaUrl =
    config.opcuaUrl || (needs.opcua ? `opc.tcp://127.0.0.1:${await freePort()}/evf` : config.opcuaUrl)
  return {
    mqttUrl: mqtt?.url ?? config.mqttUrl,
    opcuaUrl,
    ...(mqtt ? { mqtt } : {}),
    needs,
    stop: async () => mqtt?.stop(),
  }
}

/** `scripts/debian.mjs`: apt-get with progress on the terminal; a failure says what to install. */
function installMosquitto(log: Logger): void {
  log.info('installing Debian’s Mosquitto for the embedded MQTT broker (apt-get)')
  spawnSync(process.execPath, [join(repoRoot, 'scripts', 'debian.mjs'), 'mosquitto'], { stdio: 'inherit' })
}

/**
 * The devices' settings for a component: where the broker and server are, and its own login to
 * the embedded broker (`ingest` for `evf ingest`, `device` for the simulator playing the plant).
 */
export function deviceEnv(endpoints: DeviceEndpoints, user: 'ingest' | 'device'): Record<string, string> {
  const env: Record<string, string> = {
    [settings.mqttUrl.env]: endpoints.mqttUrl,
    [settings.opcuaUrl.env]: endpoints.opcuaUrl,
  }
  if (endpoints.mqtt) {
    env[settings.mqttUsername.env] = user
    env[settings.mqttPassword.env] = endpoints.mqtt.passwords[user]
  }
  return env
}
