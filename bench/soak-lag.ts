/**
 * bench:soak's once-a-second view of the pipeline, independent of the ETL's own reporting:
 * produced = the log-end offsets Kafka reports (the simulator's acknowledged sends), committed =
 * the positions the ETL committed in etl_offsets (rows + dead letters), lag = the difference.
 * (The API's /pipeline/status lag uses end offsets the ETL itself writes every 5 s, and freezes
 * when the ETL does: not what a bench looking for stalls should trust.)
 */
import type { Consumer } from '@platformatic/kafka'
import type { Pool } from '../src/db/index.ts'
import { createConsumer, type KafkaSettings } from '../src/kafka/index.ts'
import { allTopics } from '../test/plant.ts'

export interface LagSample {
  /** epoch ms */
  t: number
  produced: number
  committed: number
  lag: number
}

export class LagSampler {
  readonly samples: LagSample[] = []
  private readonly consumer: Consumer
  private readonly topics: string[]
  private timer: NodeJS.Timeout | undefined
  private busy = false
  private closed = false
  failures = 0

  constructor(
    kafka: KafkaSettings,
    private readonly pool: Pool,
    topicPrefix = 'sensor.',
  ) {
    this.consumer = createConsumer(kafka, 'bench-soak-probe', 'bench-soak-probe')
    this.topics = allTopics(topicPrefix)
  }

  /** Samples every `everyMs`; `onSample` sees each sample (the caller's other per-second work). */
  start(everyMs: number, onSample: (s: LagSample) => void): void {
    const tick = async () => {
      if (this.busy || this.closed) return
      this.busy = true
      try {
        const s = await this.sample()
        if (s) onSample(s)
      } finally {
        this.busy = false
      }
    }
    void tick()
    this.timer = setInterval(() => void tick(), everyMs)
  }

  async sample(): Promise<LagSample | undefined> {
    try {
      const [ends, committed] = await Promise.all([
        this.consumer.listOffsets({ topics: this.topics }),
        this.pool.query<{ n: number }>(
          'SELECT coalesce(sum(next_offset), 0)::float8 AS n FROM etl_offsets WHERE topic = ANY($1)',
          [this.topics],
        ),
      ])
      let produced = 0
      for (const offsets of ends.values()) for (const o of offsets) produced += Number(o)
      const c = committed.rows[0]!.n
      const s = { t: Date.now(), produced, committed: c, lag: Math.max(0, produced - c) }
      this.samples.push(s)
      return s
    } catch {
      // the broker or the database was busy or away for a moment: the next sample tells
      this.failures++
      return undefined
    }
  }

  /** Stops sampling after one last sample (returned); idempotent. */
  async stop(): Promise<LagSample | undefined> {
    clearInterval(this.timer)
    while (this.busy) await new Promise((r) => setTimeout(r, 50))
    if (this.closed) return undefined
    const last = await this.sample()
    this.closed = true
    await this.consumer.close().catch(() => undefined)
    return last
  }

  /** The last sample at or before `t` (or the first one). */
  at(t: number): LagSample | undefined {
    let found = this.samples[0]
    for (const s of this.samples) {
      if (s.t > t) break
      found = s
    }
    return found
  }

  /** Rates (per s) of produced and committed between the samples nearest `from` and `to`. */
  rates(from: number, to: number): { produced: number; committed: number } {
    const a = this.at(from)
    const b = this.at(to)
    if (!a || !b || b.t <= a.t) return { produced: 0, committed: 0 }
    const dt = (b.t - a.t) / 1000
    return { produced: (b.produced - a.produced) / dt, committed: (b.committed - a.committed) / dt }
  }

  /** Least-squares slope of the lag (messages per second) over the samples in [from, to]. */
  slope(from: number, to: number): number {
    const pts = this.samples.filter((s) => s.t >= from && s.t <= to)
    if (pts.length < 2) return 0
    const mx = pts.reduce((n, s) => n + s.t, 0) / pts.length
    const my = pts.reduce((n, s) => n + s.lag, 0) / pts.length
    let num = 0
    let den = 0
    for (const s of pts) {
      num += (s.t - mx) * (s.lag - my)
      den += (s.t - mx) ** 2
    }
    return den === 0 ? 0 : (num / den) * 1000
  }
}
