import type { Catalog, Measurement } from '../catalog/index.ts'
import { PipelineError } from '../errors/index.ts'

/**
 * A fault the simulator injects from its start (`simFault`): `mean-shift` moves the mean of every
 * reading of one station's measurement by `sigmas` standard deviations of that measurement's
 * simulation noise (the catalog's `simulation.noise`, or the default the simulator derives).
 */
export interface SimFault {
  kind: 'mean-shift'
  station: string
  measurement: string
  /** the shift in units of the measurement's noise σ; negative shifts down, fractions allowed */
  sigmas: number
}

/** What `simFault` takes, as its error messages say it. */
export const SIM_FAULT_FORM =
  'mean-shift:<station>.<measurement>:<sigmas>, several separated by commas (e.g. mean-shift:paint.booth_temp:1.5)'

/** A decimal number: no hex, no `Infinity`, no empty string (which `Number` would all take). */
const DECIMAL = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/

/** One fault of the list, or what is wrong with it. */
function parseOne(text: string): SimFault | string {
  const parts = text.split(':').map((p) => p.trim())
  if (parts.length !== 3) return `"${text}" is not <kind>:<station>.<measurement>:<sigmas>`
  const [kind, target, sigmas] = parts as [string, string, string]
  if (kind !== 'mean-shift') return `"${kind}" is not a fault kind (the one there is: mean-shift)`
  const dot = target.lastIndexOf('.')
  if (dot <= 0 || dot === target.length - 1) return `"${target}" is not <station>.<measurement>`
  const value = Number(sigmas)
  if (!DECIMAL.test(sigmas) || !Number.isFinite(value)) return `"${sigmas}" is not a number of sigmas`
  return { kind, station: target.slice(0, dot), measurement: target.slice(dot + 1), sigmas: value }
}

/**
 * `simFault`'s text as faults, or every problem in it: items separated by commas, each
 * `mean-shift:<station>.<measurement>:<sigmas>`. Empty: no fault. Whether the station and its
 * measurement exist is the catalog's to say (`simFaultProblems`).
 */
export function parseSimFaults(text: string): { faults: SimFault[]; problems: string[] } {
  const faults: SimFault[] = []
  const problems: string[] = []
  for (const item of text.split(',').map((x) => x.trim())) {
    if (!item) continue
    const parsed = parseOne(item)
    if (typeof parsed === 'string') problems.push(parsed)
    else faults.push(parsed)
  }
  return { faults, problems }
}

/** A fault as `simFault` writes it: `parseSimFaults(formatSimFault(f))` gives `f` back. */
export const formatSimFault = (f: SimFault): string => `${f.kind}:${f.station}.${f.measurement}:${f.sigmas}`

/**
 * What is wrong with `faults` against the catalog the simulator simulates: a station it does not
 * have or does not simulate (`stations`, when given and not empty), a measurement the station does
 * not have, one that is not a number or an integer, or an inspection station's defect count (which
 * the simulator draws from the inspection result). Empty: all good.
 */
export function simFaultProblems(
  faults: readonly SimFault[],
  catalog: Catalog,
  stations: readonly string[] = [],
): string[] {
  const problems: string[] = []
  for (const f of faults) {
    const at = `"${formatSimFault(f)}": `
    const station = catalog.station(f.station)
    if (!station) {
      problems.push(
        `${at}station "${f.station}" is not in the catalog; allowed: ${catalog.stations.map((s) => s.id).join(', ')}`,
      )
      continue
    }
    if (stations.length > 0 && !stations.includes(f.station)) {
      problems.push(`${at}station "${f.station}" is not simulated; simStations: ${stations.join(', ')}`)
      continue
    }
    // At an inspection station the defect count follows the result, not a mean (the simulator's model).
    const inspected = station.measurements.some((m) => m.role === 'inspection_result')
    const derived = (m: Measurement) => inspected && m.role === 'defect_count'
    const numeric = station.measurements.filter((m) => m.numeric && !derived(m))
    const allowed = `allowed (${f.station}'s numeric measurements): ${numeric.map((m) => m.name).join(', ') || 'none'}`
    const m = station.measurements.find((x) => x.name === f.measurement)
    if (!m) problems.push(`${at}station "${f.station}" has no measurement "${f.measurement}"; ${allowed}`)
    else if (!m.numeric)
      problems.push(`${at}"${f.measurement}" is ${m.type}, not a number or integer; ${allowed}`)
    else if (derived(m))
      problems.push(
        `${at}"${f.measurement}" is drawn from the inspection result (role defect_count), not around a mean; ${allowed}`,
      )
  }
  return problems
}

/**
 * Stops start-up (CONFIG_INVALID, exit 2) when `simFault` names what the simulated catalog does
 * not have, naming the setting and what is allowed.
 */
export function checkSimFaults(
  faults: readonly SimFault[],
  catalog: Catalog,
  stations: readonly string[] = [],
): void {
  const problems = simFaultProblems(faults, catalog, stations)
  if (problems.length > 0) {
    const lines = problems.map((p) => `\n  - simFault (EVF_SIM_FAULT, --sim-fault) ${p}`)
    throw new PipelineError('CONFIG_INVALID', `Invalid configuration:${lines.join('')}`)
  }
}
