import type { MqttClient, Packet } from 'mqtt'

/**
 * PUBACKs held back until Kafka has acknowledged the message they answer, without holding the
 * MQTT.js client up.
 *
 * MQTT.js handles incoming packets one at a time and writes a QoS 1 message's PUBACK when
 * `handleMessage`'s callback runs; the next packet (a PINGRESP included) waits for it. Awaiting
 * Kafka there moves about 450 messages/s, and while Kafka is down the keepalive times out and the
 * connection loops (MQTT.js #1935). So `handleMessage` answers at once with {@link HELD}, which
 * makes MQTT.js skip its PUBACK (handlers/publish.js: an error to the callback ends the packet
 * there) and go on with the next packet, and this class writes the PUBACK itself, through the
 * client's private `_sendPacket`, once that message's write resolved. Both are MQTT.js 5.16
 * internals: package.json pins the version, and test/unit/ingest-mqtt.test.ts checks the
 * behaviour against a real broker, so an upgrade that changes it fails there.
 *
 * PUBACKs go out in receive order (MQTT 3.1.1 §4.6). A PUBACK owed on a connection that has
 * closed is dropped: the broker sends the message again (DUP) on the next one, and the ETL's
 * natural-key check stores it once. Memory is bounded by the broker, which sends at most Receive
 * Maximum (MQTT 5) or its `max_inflight_messages` (3.1.1) messages without a PUBACK.
 */
export class HeldAcks {
  private queue: Held[] = []
  private head = 0
  /** the connection PUBACKs are owed on: a new one starts at each `connect` */
  private connection = 0
  private drained: (() => void) | undefined

  constructor(
    private readonly client: MqttClient,
    private readonly onAck: () => void,
  ) {
    client.on('connect', () => {
      this.connection++
      this.release()
    })
  }

  /** Messages received and not yet answered (or given up). */
  get pending(): number {
    return this.queue.length - this.head
  }

  /**
   * Holds the PUBACK of `messageId` (just received) until `write` settles: resolved, it is sent
   * in turn; rejected, it is never sent, and the broker redelivers the message on the next
   * connection.
   */
  hold(messageId: number, write: Promise<void>): void {
    const held: Held = { messageId, connection: this.connection, settled: false, ok: false }
    this.queue.push(held)
    write.then(
      () => this.settle(held, true),
      () => this.settle(held, false),
    )
  }

  /** Resolves when every held PUBACK is sent or given up, or after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<void> {
    if (this.pending === 0) return
    let timer: NodeJS.Timeout | undefined
    await new Promise<void>((resolve) => {
      this.drained = resolve
      timer = setTimeout(resolve, timeoutMs)
    })
    clearTimeout(timer)
    this.drained = undefined
  }

  private settle(held: Held, ok: boolean): void {
    held.settled = true
    held.ok = ok
    this.release()
  }

  /** Sends the PUBACKs at the head of the queue whose writes are done, in order. */
  private release(): void {
    while (this.head < this.queue.length) {
      const held = this.queue[this.head] as Held
      if (!held.settled) break
      this.head++
      // Not connected, `_sendPacket` would queue the PUBACK for the next connection, where its
      // packet id may name another message.
      if (held.ok && held.connection === this.connection && this.client.connected) {
        sendPacket(this.client, { cmd: 'puback', messageId: held.messageId, reasonCode: 0 })
        this.onAck()
      }
    }
    if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.head)
      this.head = 0
    }
    if (this.pending === 0) this.drained?.()
  }
}

/** Given to `handleMessage`'s callback: MQTT.js then sends no PUBACK and takes the next packet. */
export const HELD = new Error('PUBACK held until Kafka acknowledges')

interface Held {
  messageId: number
  connection: number
  settled: boolean
  ok: boolean
}

/** MQTT.js's private packet writer (5.16): the one way to write a PUBACK of our own. */
function sendPacket(client: MqttClient, packet: Packet): void {
  ;(client as unknown as { _sendPacket(p: Packet): void })._sendPacket(packet)
}
