/**
 * The simulator as the plant's MQTT devices (`--sim-transport mqtt`): each reading in our JSON
 * message format, QoS 1, on its sensor's topic (`simTopic`), as the broker user `device`. A send
 * resolves once the broker acknowledged (PUBACK) every reading of it.
 */
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import mqtt from 'mqtt'
import { PipelineError } from '../../errors/index.ts'
import { simTopic } from '../devices.ts'
import type { OpenTransport } from './types.ts'

/** Messages published and not yet acknowledged, at most: the broker's Receive Maximum if smaller. */
const WINDOW = 1000

export const open: OpenTransport = async ({ config, catalog, log }) => {
  if (!config.mqttUrl)
    throw new PipelineError('CONFIG_INVALID', 'mqttUrl (EVF_MQTT_URL) is empty: the simulator has no broker')
  const v5 = config.mqttProtocol === '5'
  const client = await mqtt.connectAsync(config.mqttUrl, {
    clientId: `evf-sim-${randomUUID().slice(0, 8)}`,
    protocolVersion: v5 ? 5 : 4,
    clean: true,
    username: config.mqttUsername || undefined,
    password: config.mqttPassword || undefined,
    ...(config.mqttCaFile && { ca: readFileSync(config.mqttCaFile) }),
    reconnectPeriod: 1000,
  })
  client.on('error', (error) => log.warn({ err: error.message }, 'simulator MQTT error'))
  client.on('offline', () => log.warn({ url: config.mqttUrl }, 'simulator MQTT connection lost: retrying'))
  // A broker that limits what a client may have unacknowledged (MQTT 5 Receive Maximum) disconnects one that exceeds it.
  const window = Math.min(WINDOW, client.serverProperties?.receiveMaximum ?? WINDOW)
  log.info({ url: config.mqttUrl, window }, 'simulator publishing to MQTT')
  return {
    async send(readings) {
      const plant = catalog()
      let next = 0
      let failure: unknown
      const worker = async () => {
        while (next < readings.length && failure === undefined) {
          const reading = readings[next++]
          if (!reading) break
          const station = plant.station(reading.station)
          if (!station)
            throw new PipelineError('CONFIG_INVALID', `no station ${reading.station} in the catalog`)
          await client
            .publishAsync(simTopic(station, reading.sensor_id), JSON.stringify(reading), { qos: 1 })
            .catch((error: unknown) => {
              failure ??= error
            })
        }
      }
      await Promise.all(Array.from({ length: Math.min(window, readings.length) }, worker))
      if (failure !== undefined) throw failure
    },
    async close() {
      await client.endAsync()
    },
  }
}
