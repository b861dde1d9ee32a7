/**
 * The message format, the contract between whoever produces readings and the ETL: one JSON
 * object per Kafka message on its station's topic (`sensor.<station>` by default), keyed by its sensor (docs/etl.md). It
 * lives with the catalog because the catalog already says what each station's message holds and
 * is the one module the simulator, the ETL and the db all import; the ETL validates against both.
 */

/**
 * A reading as the simulator sends it (a message's value): the reference shape
 * (`station`, `timestamp` in epoch seconds, the station's measurements) plus our extras, which
 * the ETL accepts without (a message in the reference shape from any Kafka client passes).
 */
export interface SensorMessage {
  station: string
  timestamp: number
  sensor_id: string
  line: string
  seq: number
  [field: string]: string | number | boolean
}

/**
 * A Kafka record as the ETL reads it, before any parsing: its coordinates and raw bytes. A
 * dead letter keeps it as it was.
 */
export interface SourceRecord {
  topic: string
  partition: number
  offset: bigint
  key: Buffer | null | undefined
  value: Buffer | null | undefined
  headers?: Map<Buffer, Buffer> | undefined
}

/**
 * Kafka headers a producer may put on a reading, which the ETL reads (docs/devices.md). `evf
 * ingest` sets them: where a reading came from, whether the device's broker redelivered it, and a
 * quality that is not good. Plain names, so another producer can set them too.
 */
export const MESSAGE_HEADERS = {
  /** `mqtt`, `sparkplug` or `opcua` */
  source: 'evf-source',
  /** `1`: the broker marked the message a redelivery (MQTT DUP): the ETL loads it only if its natural key is new */
  redelivered: 'evf-redelivered',
  /** a status that is not good (`Bad 0x808C0000 BadSensorFailure`): the ETL dead-letters the reading with it */
  quality: 'evf-quality',
} as const
