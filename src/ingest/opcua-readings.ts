import type { Catalog, SensorMessage, Station } from '../catalog/index.ts'
import type { IngestedReading } from './types.ts'

/** One monitored node: which station, sensor and measurement it feeds. */
export interface NodeTarget {
  station: string
  sensor: string
  measurement: string
  nodeId: string
}

/** A value as a monitored item delivers it, already converted from its OPC UA variant. */
export interface NodeValue {
  value: string | number | boolean | null
  /** the status code's 32 bits */
  status: number
  /** its name (`BadSensorFailure`) */
  statusName: string
  /** the source timestamp in epoch milliseconds */
  timeMs: number
  /** the first value after the item was (re)created: the server's current value, maybe seen before */
  initial: boolean
}

type Value = string | number | boolean

interface SensorState {
  station: Station
  sensor: string
  /** the last good value of each measurement, and its source time */
  good: Map<string, { value: Value; timeMs: number }>
  /** measurements changed since the last reading */
  pending: Set<string>
  pendingInitial: boolean
  seq: number
  timer: NodeJS.Timeout | undefined
}

/** `Bad 0x808C0000 BadSensorFailure`: the top two bits of a status code are its severity. */
export function qualityOf(status: number, name: string): string | undefined {
  const severity = status >>> 30
  if (severity === 0) return undefined
  const hex = (status >>> 0).toString(16).toUpperCase().padStart(8, '0')
  return `${severity === 1 ? 'Uncertain' : 'Bad'} 0x${hex} ${name}`
}

/** A server that has no value yet says so (BadWaitingForInitialData, UncertainInitialValue): nothing was measured, nothing to dead-letter. */
const NO_VALUE_YET = new Set([0x80320000, 0x40920000])

/**
 * Turns node values into readings in our message format. OPC UA delivers one value per node; a
 * reading carries every measurement of its station, so the last good value of each is kept per
 * sensor and a reading is emitted, once all are known, with the newest source time. A server
 * samples each node on its own clock, so values a device wrote together can arrive up to one
 * sampling interval apart: changes of one sensor are gathered for `windowMs` (a second change of
 * the same measurement closes the reading early). A Bad or Uncertain value is emitted at once
 * with its status as the quality (the ETL dead-letters it and keeps the raw) and does not become
 * the last good value. A reading built from the first values after a subscription was (re)made
 * is marked redelivered: the server sends its current values again, and the ETL loads such a
 * reading only if its sensor and time are new.
 */
export class ReadingAssembler {
  private readonly sensors = new Map<string, SensorState>()

  constructor(
    private readonly catalog: () => Catalog,
    private readonly windowMs: (station: string) => number,
    private readonly emit: (items: IngestedReading[]) => void,
  ) {}

  value(target: NodeTarget, v: NodeValue): void {
    const state = this.state(target)
    if (!state) return
    const quality = qualityOf(v.status, v.statusName)
    if (quality) {
      if (v.value === null && NO_VALUE_YET.has(v.status >>> 0)) return
      const reading = this.reading(state, v.timeMs, true)
      if (v.value !== null) reading[target.measurement] = v.value
      this.emit([{ reading, quality }])
      return
    }
    if (v.value === null) return
    if (state.pending.has(target.measurement)) this.flush(state)
    state.good.set(target.measurement, { value: v.value, timeMs: v.timeMs })
    state.pending.add(target.measurement)
    state.pendingInitial ||= v.initial
    // A timer of 0 still runs after every value of the same publish response was handed over.
    state.timer ??= setTimeout(() => this.flush(state), this.windowMs(target.station))
  }

  /** Emits every reading still gathering (on stop). */
  flushAll(): void {
    for (const s of this.sensors.values()) this.flush(s)
  }

  private state(target: NodeTarget): SensorState | undefined {
    const key = `${target.station}\u0000${target.sensor}`
    let state = this.sensors.get(key)
    if (!state) {
      const station = this.catalog().station(target.station)
      if (!station) return undefined
      state = {
        station,
        sensor: target.sensor,
        good: new Map(),
        pending: new Set(),
        pendingInitial: false,
        seq: 0,
        timer: undefined,
      }
      this.sensors.set(key, state)
    }
    return state
  }

  private flush(state: SensorState): void {
    clearTimeout(state.timer)
    state.timer = undefined
    if (state.pending.size === 0) return
    const redelivered = state.pendingInitial
    state.pending.clear()
    state.pendingInitial = false
    // Nothing until every measurement is known: the ETL dead-letters a reading missing one.
    if (state.station.measurements.some((m) => !state.good.has(m.name))) return
    const newest = Math.max(...[...state.good.values()].map((g) => g.timeMs))
    this.emit([{ reading: this.reading(state, newest, false), ...(redelivered ? { redelivered } : {}) }])
  }

  private reading(state: SensorState, timeMs: number, partial: boolean): SensorMessage {
    const reading: SensorMessage = {
      station: state.station.id,
      timestamp: timeMs / 1000,
      sensor_id: state.sensor,
      line: state.station.line.id,
      seq: ++state.seq,
    }
    for (const m of state.station.measurements) {
      const g = state.good.get(m.name)
      if (g) reading[m.name] = g.value
      else if (!partial) return reading
    }
    return reading
  }
}
