import {
  type API,
  type Callback,
  type CallbackWithPromise,
  Consumer,
  type ConsumerOptions,
  createAPI,
  type FetchOptions,
  fetchV17,
  IS_CONTROL,
  kGetApi,
  Reader,
  type RecordsBatch,
  ResponseError,
  readRecordsBatch,
} from '@platformatic/kafka'

/** A record batch the client could not decode, and the partition it holds back. */
export interface UndecodableBatch {
  topicId: string
  partition: number
  /** the batch's first and last offsets, from its header */
  firstOffset: bigint
  lastOffset: bigint
  /** the whole batch as the broker sent it, header included */
  raw: Buffer
  /** what the decoder said */
  reason: string
}

type FetchArgs = Parameters<typeof fetchV17.createRequest>
type FetchResponse = ReturnType<typeof fetchV17.parseResponse>
type FetchRequestTopic = FetchArgs[6][number]
type Fetch = (
  options: FetchOptions<Buffer, Buffer, Buffer, Buffer>,
  callback?: CallbackWithPromise<FetchResponse>,
) => undefined | Promise<FetchResponse>
type FetchResponsePartition = FetchResponse['responses'][number]['partitions'][number]

/** Bytes of a record batch header before the batch's own length counts (base offset, length). */
const LOG_OVERHEAD = 12
/** Offset of lastOffsetDelta in a v2 record batch header. */
const LAST_OFFSET_DELTA_AT = 23
/** Shortest batch header: base offset … record count. */
const BATCH_HEAD = 61

const idKey = (topicId: string, partition: number) => `${topicId}:${partition}`

/**
 * The project's consumer: the client's own, plus three things its fetch gets wrong or leaves out.
 *
 * - **A batch it cannot decode holds back its partition only.** The client decodes a whole fetch
 *   response at once, so one such batch (a codec it lacks, corrupt bytes) failed the fetch of every
 *   partition on that broker, was retried as a network fault, and stopped them all for good. Here
 *   a response that fails to decode is decoded again batch by batch: every partition keeps what
 *   decodes, and a partition whose batch does not is held back at it, reported once through
 *   `onUndecodable` and left out of later fetches (so the broker's fetch session forgets it) until
 *   `release`d, after `evf etl skip` moved past it.
 * - **Aborted transactions are dropped whole.** The client drops an aborted transaction's records
 *   only when its abort marker is in the same response; a transaction larger than one fetch leaked
 *   its first records. Here every data batch of a producer listed as aborted, from the listed first
 *   offset until its marker, is emptied (kept, so the stream's position still moves past it).
 * - **Where a fetch ended** (`fetchedTo`), control batches included: a transaction's commit marker
 *   takes an offset that no message carries, and a position must move past it or a read-committed
 *   reader waits one offset short of the end for ever.
 *
 * This wraps the client's Fetch v17 (what Kafka 3.8+ answers); with an older broker the client's
 * own fetch runs unchanged.
 */
export class EvfConsumer extends Consumer<Buffer, Buffer, Buffer, Buffer> {
  /** partitions held back, by `topicId:partition` */
  readonly held = new Map<string, UndecodableBatch>()
  /** per `topicId:partition`, the offset after the last batch fetched (control batches included) */
  readonly fetchedTo = new Map<string, bigint>()
  onUndecodable: (batch: UndecodableBatch) => void = () => undefined
  #fetchApi: API<FetchArgs, FetchResponse> | undefined

  constructor(options: ConsumerOptions<Buffer, Buffer, Buffer, Buffer>) {
    super(options)
    // An own property rather than an override: `fetch` is overloaded (callback or promise), and
    // the messages stream calls it with a callback, which is the form this filters.
    const fetch = this.fetch.bind(this) as unknown as Fetch
    const filtered: Fetch = (options, callback) => {
      if (!callback) return fetch(options)
      const topics = this.withoutHeld(options.topics)
      // Every partition asked of this broker is held back: an empty answer after the wait the broker would take.
      if (topics.length === 0) {
        setTimeout(
          () => callback(null, { throttleTimeMs: 0, errorCode: 0, sessionId: 0, responses: [] }),
          options.maxWaitTime ?? 500,
        )
        return
      }
      fetch({ ...options, topics }, (error, response) => {
        if (!error && response) this.noteFetched(topics, response)
        callback(error, response)
      })
    }
    this.fetch = filtered as unknown as typeof this.fetch
  }

  release(topicId: string, partition: number): void {
    this.held.delete(idKey(topicId, partition))
  }

  override [kGetApi]<RequestArguments extends Array<unknown>, ResponseType>(
    name: string,
    callback: Callback<API<RequestArguments, ResponseType>>,
  ): void {
    if (name !== 'Fetch') {
      super[kGetApi](name, callback)
      return
    }
    super[kGetApi]<RequestArguments, ResponseType>(name, (error, api) => {
      if (error || !api || api.version !== 17) {
        callback(error, api as API<RequestArguments, ResponseType>)
        return
      }
      this.#fetchApi ??= createAPI<FetchArgs, FetchResponse>(
        1,
        17,
        fetchV17.createRequest,
        (id, key, v, reader) => this.parse(id, key, v, reader),
      )
      callback(null, this.#fetchApi as unknown as API<RequestArguments, ResponseType>)
    })
  }

  private parse(id: number, key: number, version: number, reader: Reader): FetchResponse {
    const start = reader.position
    let response: FetchResponse
    try {
      response = fetchV17.parseResponse(id, key, version, reader)
    } catch (error) {
      if (error instanceof ResponseError) throw error
      reader.position = start
      response = parseBatchByBatch(reader, (bad) => this.hold(bad))
    }
    for (const topic of response.responses)
      for (const partition of topic.partitions)
        if (partition.records?.length && partition.abortedTransactions?.length)
          emptyAborted(partition.records, partition.abortedTransactions)
    return response
  }

  /**
   * Records where each requested partition's fetch ended. Called just before the stream pushes
   * the response's messages, in the same tick: once the stream's buffer is empty, every message
   * below `fetchedTo` has been read. A partition the broker's fetch session sent unasked is not
   * recorded (the stream drops its messages). Cleared for each new stream (`resetFetched`).
   */
  private noteFetched(topics: FetchRequestTopic[], response: FetchResponse): void {
    const asked = new Set(topics.flatMap((t) => t.partitions.map((p) => idKey(t.topicId, p.partition))))
    for (const topic of response.responses)
      for (const { partitionIndex, records } of topic.partitions) {
        const key = idKey(topic.topicId, partitionIndex)
        const last = records?.[records.length - 1]
        if (last && asked.has(key))
          this.fetchedTo.set(key, last.firstOffset + BigInt(last.lastOffsetDelta) + 1n)
      }
  }

  resetFetched(): void {
    this.fetchedTo.clear()
  }

  private withoutHeld(topics: FetchRequestTopic[]): FetchRequestTopic[] {
    if (this.held.size === 0) return topics
    return topics
      .map((t) => ({
        ...t,
        partitions: t.partitions.filter((p) => !this.held.has(idKey(t.topicId, p.partition))),
      }))
      .filter((t) => t.partitions.length > 0)
  }

  private hold(bad: UndecodableBatch): void {
    const key = idKey(bad.topicId, bad.partition)
    if (this.held.has(key)) return
    this.held.set(key, bad)
    this.onUndecodable(bad)
  }
}

/**
 * Empties the data batches of aborted transactions, as Kafka's own consumers do: a producer listed
 * as aborted from `firstOffset` has its batches dropped until its abort marker (a control batch
 * whose first record's key says ABORT, type 0).
 */
function emptyAborted(batches: RecordsBatch[], aborted: { producerId: bigint; firstOffset: bigint }[]): void {
  const pending = [...aborted].sort((a, b) => (a.firstOffset < b.firstOffset ? -1 : 1))
  const open = new Set<bigint>()
  for (const batch of batches) {
    while (pending.length > 0 && pending[0]!.firstOffset <= batch.firstOffset)
      open.add(pending.shift()!.producerId)
    if (!open.has(batch.producerId)) continue
    if (batch.attributes & IS_CONTROL) {
      if (batch.records[0]?.key?.readInt16BE(2) === 0) open.delete(batch.producerId)
    } else batch.records = []
  }
}

/**
 * Fetch v17's response, read field by field as the protocol defines it, with each partition's
 * record batches decoded one at a time: a batch that fails to decode ends that partition's
 * records (the batches before it are kept) and is reported through `onBad`.
 */
function parseBatchByBatch(reader: Reader, onBad: (bad: UndecodableBatch) => void): FetchResponse {
  const throttleTimeMs = reader.readInt32()
  const errorCode = reader.readInt16()
  const sessionId = reader.readInt32()
  const errors: [string, [number, null]][] = []
  const responses = reader.readArray((r, i) => {
    const topicId = r.readUUID()
    const partitions = r.readArray(
      (r, j) => {
        const partition = readPartition(r, topicId, onBad)
        if (partition.errorCode !== 0)
          errors.push([`/responses/${i}/partitions/${j}`, [partition.errorCode, null]])
        return partition
      },
      true,
      false,
    )
    return { topicId, partitions }
  })
  skipTaggedFields(reader)
  const response: FetchResponse = { throttleTimeMs, errorCode, sessionId, responses }
  if (errorCode !== 0) errors.unshift(['', [errorCode, null]])
  if (errors.length > 0) throw new ResponseError(1, 17, Object.fromEntries(errors), response)
  return response
}

function readPartition(
  r: Reader,
  topicId: string,
  onBad: (bad: UndecodableBatch) => void,
): FetchResponsePartition {
  const partition: FetchResponsePartition = {
    partitionIndex: r.readInt32(),
    errorCode: r.readInt16(),
    highWatermark: r.readInt64(),
    lastStableOffset: r.readInt64(),
    logStartOffset: r.readInt64(),
    abortedTransactions: r.readNullableArray((r) => ({
      producerId: r.readInt64(),
      firstOffset: r.readInt64(),
    })),
    preferredReadReplica: r.readInt32(),
    records: [],
  }
  // COMPACT_RECORDS: length + 1, 0 for null.
  const size = r.readUnsignedVarInt()
  if (size === 0) partition.records = null
  else if (size > 1) {
    const bytes = r.buffer.slice(r.position, r.position + size - 1)
    r.skip(size - 1)
    const { batches, bad } = decodeBatches(bytes)
    partition.records = batches
    if (bad) onBad({ topicId, partition: partition.partitionIndex, ...bad })
  }
  readPartitionTaggedFields(r, partition)
  return partition
}

/** Decodes batch after batch; stops at the first that fails, and describes it from its header. */
export function decodeBatches(bytes: Buffer): {
  batches: RecordsBatch[]
  bad?: Omit<UndecodableBatch, 'topicId' | 'partition'>
} {
  const batches: RecordsBatch[] = []
  let at = 0
  while (bytes.length - at >= BATCH_HEAD) {
    const end = at + LOG_OVERHEAD + bytes.readInt32BE(at + 8)
    // The broker may cut the last batch of a fetch short: it comes whole in the next one.
    if (end > bytes.length) break
    try {
      batches.push(readRecordsBatch(Reader.from(bytes.subarray(at, end))))
    } catch (error) {
      const firstOffset = bytes.readBigInt64BE(at)
      return {
        batches,
        bad: {
          firstOffset,
          lastOffset: firstOffset + BigInt(bytes.readInt32BE(at + LAST_OFFSET_DELTA_AT)),
          raw: Buffer.from(bytes.subarray(at, end)),
          reason: error instanceof Error ? error.message : String(error),
        },
      }
    }
    at = end
  }
  return { batches }
}

function readPartitionTaggedFields(r: Reader, partition: FetchResponsePartition): void {
  const count = r.readUnsignedVarInt()
  for (let i = 0; i < count; i++) {
    const tag = r.readUnsignedVarInt()
    const size = r.readUnsignedVarInt()
    const end = r.position + size
    if (tag === 0) partition.divergingEpoch = { epoch: r.readInt32(), endOffset: r.readInt64() }
    else if (tag === 1) partition.currentLeader = { leaderId: r.readInt32(), leaderEpoch: r.readInt32() }
    else if (tag === 2) partition.snapshotId = { endOffset: r.readInt64(), epoch: r.readInt32() }
    r.position = end
  }
}

function skipTaggedFields(r: Reader): void {
  const count = r.readUnsignedVarInt()
  for (let i = 0; i < count; i++) {
    r.readUnsignedVarInt()
    r.skip(r.readUnsignedVarInt())
  }
}
