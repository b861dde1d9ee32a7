import type { Catalog, Measurement, NumericMeasurement, SensorMessage, Station } from '../catalog/index.ts'

/** Mulberry32: a small, fast, seedable PRNG — same seed, same plant. */
/** The sensors the simulator reads of a station: the catalog's, or `<station>-01`… when it lists none. */
export function simulatedSensors(station: Station, perStation: number): readonly string[] {
  return (
    station.sensors ??
    Array.from({ length: perStation }, (_, i) => `${station.id}-${String(i + 1).padStart(2, '0')}`)
  )
}

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
  station: Station
  seq: number
  /** current process offset from nominal per numeric measurement (the drift) */
  offsets: Record<string, number>
}

/**
 * A mean shift (`simFault` `mean-shift:<station>.<measurement>:<sigmas>`): every reading of the
 * station's measurement is drawn around nominal + `sigmas` × the measurement's noise σ (its
 * `simulation.noise`, or the default `modelOf` derives), then clamped and rounded as any other.
 * A `SimFault` of config/ is one.
 */
export interface MeanShift {
  station: string
  measurement: string
  /** negative moves the mean down; fractions allowed */
  sigmas: number
}

/** How the simulator draws a numeric measurement: the catalog's `simulation`, or from its limits. */
function modelOf(m: NumericMeasurement): {
  nominal: number
  noise: number
  drift: number
  lo: number
  hi: number
} {
  const { lsl, target, usl } = m.spec ?? {}
  const { min, max } = m.range
  const lo = lsl ?? min
  const hi = usl ?? max
  const nominal = m.simulation?.nominal ?? target ?? (lo + hi) / 2
  // Capable by default: the spec width is ±5σ (Cp 1.67); the drift wanders a fifteenth of σ per reading.
  const noise =
    m.simulation?.noise ?? (lsl !== undefined && usl !== undefined ? (usl - lsl) / 10 : (max - min) / 50)
  const drift = m.simulation?.drift ?? noise / 15
  return { nominal, noise, drift, lo, hi }
}

/**
 * The plant model, read from the catalog: each sensor's numeric measurements follow nominal + a
 * mean-reverting random walk (slow drift) + noise; with probability `faultRate` a reading is a
 * fault, a spike well outside the spec limits (but still plausible). Enums are drawn from their
 * weights, and at an inspection station a failed result carries more defects. `meanShifts` move
 * the mean of chosen measurements by a number of σ (an injected process shift); a spike stays a spike.
 */
export class PlantSimulator {
  sensors: SensorState[] = []
  private readonly rand: () => number
  private readonly faultRate: number
  private readonly sensorsPerStation: number
  /** the stations to simulate, or undefined for every station of the catalog */
  private readonly only: readonly string[] | undefined
  /** station → measurement → mean shift in σ (several on one measurement add up) */
  private readonly shifts = new Map<string, Map<string, number>>()

  constructor(opts: {
    catalog: Catalog
    /** station ids to simulate; empty or absent: all of the catalog's */
    stations?: readonly string[] | undefined
    sensorsPerStation: number
    seed: number
    faultRate: number
    /** injected from the first reading on; a station or measurement the catalog lacks shifts nothing */
    meanShifts?: readonly MeanShift[] | undefined
  }) {
    this.rand = prng(opts.seed)
    this.faultRate = opts.faultRate
    for (const { station, measurement, sigmas } of opts.meanShifts ?? []) {
      const of = this.shifts.get(station) ?? new Map<string, number>()
      of.set(measurement, (of.get(measurement) ?? 0) + sigmas)
      this.shifts.set(station, of)
    }
    this.sensorsPerStation = opts.sensorsPerStation
    this.only = opts.stations && opts.stations.length > 0 ? opts.stations : undefined
    this.follow(opts.catalog)
  }

  /**
   * Simulates `catalog` from now on: sensors of new stations start, those of retired stations
   * stop, and the others keep their state (sequence numbers, drift) under the new definitions.
   */
  follow(catalog: Catalog): void {
    const before = new Map(this.sensors.map((s) => [s.id, s]))
    const stations = catalog.stations.filter((s) => !this.only || this.only.includes(s.id))
    this.sensors = stations.flatMap((station) =>
      simulatedSensors(station, this.sensorsPerStation).map((id) => {
        const known = before.get(id)
        return known ? { ...known, station } : { id, station, seq: 0, offsets: {} }
      }),
    )
  }

  /** One reading of every sensor, stamped `nowMs`. */
  tick(nowMs: number): SensorMessage[] {
    return this.sensors.map((s) => this.read(s, nowMs))
  }

  read(sensor: SensorState, nowMs: number): SensorMessage {
    const reading: SensorMessage = {
      station: sensor.station.id,
      timestamp: nowMs / 1000,
      sensor_id: sensor.id,
      line: sensor.station.line.id,
      seq: ++sensor.seq,
    }
    const fault = this.rand() < this.faultRate
    for (const m of sensor.station.measurements) {
      if (m.type === 'enum') reading[m.name] = this.pick(m.values, m.simulation?.weights)
      else if (m.type === 'boolean') reading[m.name] = this.rand() < (m.simulation?.p_true ?? 0.5)
      else reading[m.name] = this.numeric(sensor, m as NumericMeasurement, fault)
    }
    this.correlateInspection(sensor.station, reading)
    return reading
  }

  private numeric(sensor: SensorState, m: NumericMeasurement, fault: boolean): number {
    const { nominal, noise, drift, lo, hi } = modelOf(m)
    const off = (sensor.offsets[m.name] ?? 0) * 0.98 + gaussian(this.rand) * drift
    sensor.offsets[m.name] = off
    let value = nominal + off + gaussian(this.rand) * noise
    // Draws no random number: with no shift, or on another measurement, readings are unchanged.
    const sigmas = this.shifts.get(sensor.station.id)?.get(m.name)
    if (sigmas !== undefined) value += sigmas * noise
    if (fault) {
      const span = hi - lo || 1
      value = this.rand() < 0.5 ? lo - span * (0.2 + this.rand()) : hi + span * (0.2 + this.rand())
    }
    value = Math.min(m.range.max, Math.max(m.range.min, value))
    // Sensors report more digits than the plant keeps: the ETL rounds to the catalog's decimals.
    return m.type === 'integer' ? Math.round(value) : Number(value.toFixed(m.decimals + 3))
  }

  /** At an inspection station, a pass carries at most one defect and a failure one to five more. */
  private correlateInspection(station: Station, reading: SensorMessage): void {
    let result: Measurement | undefined
    let defects: Measurement | undefined
    for (const m of station.measurements) {
      if (m.role === 'inspection_result') result = m
      else if (m.role === 'defect_count') defects = m
    }
    if (result?.type !== 'enum' || !defects) return
    const base = Math.max(0, Math.round(Math.abs(gaussian(this.rand)) * 0.8))
    reading[defects.name] =
      reading[result.name] === result.pass ? Math.min(base, 1) : base + 1 + Math.floor(this.rand() * 4)
  }

  private pick(values: readonly string[], weights?: readonly number[]): string {
    // Weights need not add up to 1 (the catalog checks they are not all 0).
    const total = weights ? weights.reduce((a, b) => a + b, 0) : values.length
    let r = this.rand() * (Math.abs(total - 1) < 1e-9 ? 1 : total)
    for (let i = 0; i < values.length; i++) {
      r -= weights ? (weights[i] ?? 0) : 1
      if (r <= 0) return values[i]!
    }
    return values[values.length - 1]!
  }
}
