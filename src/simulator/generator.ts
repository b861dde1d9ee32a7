import {
  inspection,
  type NumericField,
  type SensorMessage,
  type StationName,
  stations,
} from '../catalog/index.ts'

/** Mulberry32: a small, fast, seedable PRNG — same seed, same plant. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function gaussian(rand: () => number): number {
  const u = 1 - rand()
  const v = rand()
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
}

interface SensorState {
  id: string
  station: StationName
  seq: number
  /** current process offset from nominal per numeric field (the drift) */
  offsets: Record<string, number>
}

/**
 * The plant model: each sensor's numeric fields follow nominal + a mean-reverting random walk
 * (slow drift) + noise; with probability `faultRate` a reading is a fault, a spike well outside
 * the spec limits (but still plausible). Quality results are drawn from the catalog's weights,
 * and FAIL/REWORK carry more defects.
 */
export class PlantSimulator {
  readonly sensors: SensorState[]
  private readonly rand: () => number
  private readonly faultRate: number

  constructor(opts: {
    stations: readonly StationName[]
    sensorsPerStation: number
    seed: number
    faultRate: number
  }) {
    this.rand = prng(opts.seed)
    this.faultRate = opts.faultRate
    this.sensors = opts.stations.flatMap((station) =>
      Array.from({ length: opts.sensorsPerStation }, (_, i) => ({
        id: `${station}-${String(i + 1).padStart(2, '0')}`,
        station,
        seq: 0,
        offsets: {},
      })),
    )
  }

  /** One reading of every sensor, stamped `nowMs`. */
  tick(nowMs: number): SensorMessage[] {
    return this.sensors.map((s) => this.read(s, nowMs))
  }

  read(sensor: SensorState, nowMs: number): SensorMessage {
    const reading: SensorMessage = {
      station: sensor.station,
      timestamp: nowMs / 1000,
      sensor_id: sensor.id,
      line: 'L1',
      seq: ++sensor.seq,
    }
    const fault = this.rand() < this.faultRate
    for (const [name, field] of Object.entries(stations[sensor.station].fields)) {
      reading[name] =
        field.kind === 'enum'
          ? this.pick(field.values, field.sim.weights)
          : this.numeric(sensor, name, field, fault)
    }
    if (sensor.station === 'quality') this.correlateQuality(reading)
    return reading
  }

  private numeric(sensor: SensorState, name: string, field: NumericField, fault: boolean): number {
    const { nominal, noise, drift } = field.sim
    const off = (sensor.offsets[name] ?? 0) * 0.98 + gaussian(this.rand) * drift
    sensor.offsets[name] = off
    let value = nominal + off + gaussian(this.rand) * noise
    if (fault) {
      const [lo, hi] = field.spec
      const span = hi - lo || 1
      value = this.rand() < 0.5 ? lo - span * (0.2 + this.rand()) : hi + span * (0.2 + this.rand())
    }
    const [pmin, pmax] = field.plausible
    value = Math.min(pmax, Math.max(pmin, value))
    // Sensors report more digits than the plant keeps: the ETL rounds to the catalog precision.
    return field.kind === 'integer' ? Math.round(value) : Number(value.toFixed(field.precision + 3))
  }

  private correlateQuality(reading: SensorMessage): void {
    const result = reading.inspection_result
    const base = Math.max(0, Math.round(Math.abs(gaussian(this.rand)) * 0.8))
    reading.defect_count =
      result === inspection.pass ? Math.min(base, 1) : base + 1 + Math.floor(this.rand() * 4)
  }

  private pick(values: readonly string[], weights: readonly number[]): string {
    let r = this.rand()
    for (let i = 0; i < values.length; i++) {
      r -= weights[i] ?? 0
      if (r <= 0) return values[i]!
    }
    return values[values.length - 1]!
  }
}
