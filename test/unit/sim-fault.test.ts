/**
 * `simFault` (`--sim-fault`, `EVF_SIM_FAULT`): a mean shift injected into the simulator. The
 * shifted measurement's mean moves by sigmas × its noise σ and nothing else changes, a bad value
 * stops start-up naming the setting and what is allowed, and the value reaches a child process.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { defaultPartitioner } from '@platformatic/kafka'
import { Command } from 'commander'
import { Catalog, type NumericMeasurement, type SensorMessage } from '../../src/catalog/index.ts'
import { withSettings } from '../../src/cli/options.ts'
import {
  checkSimFaults,
  configToEnv,
  loadConfig,
  parseSimFaults,
  type SimFault,
} from '../../src/config/index.ts'
import { PipelineError } from '../../src/errors/index.ts'
import { type MeanShift, PlantSimulator, toMessage } from '../../src/simulator/index.ts'
import { plant, withWelding } from '../plant.ts'

const N = 2000

/** `N` readings of one sensor of `stationId`, with the shifts given (and no spikes unless asked). */
function run(
  catalog: Catalog,
  stationId: string,
  meanShifts?: MeanShift[],
  opts: { seed?: number; faultRate?: number } = {},
): SensorMessage[] {
  const sim = new PlantSimulator({
    catalog,
    stations: [stationId],
    sensorsPerStation: 1,
    seed: opts.seed ?? 11,
    faultRate: opts.faultRate ?? 0,
    ...(meanShifts ? { meanShifts } : {}),
  })
  return Array.from({ length: N }, (_, i) => sim.tick(1_738_433_976_027 + i * 5000)).flat()
}

const mean = (readings: SensorMessage[], field: string) =>
  readings.reduce((sum, r) => sum + (r[field] as number), 0) / readings.length

const numeric = (catalog: Catalog, stationId: string, name: string) =>
  catalog.station(stationId)!.measurements.find((m) => m.name === name) as NumericMeasurement

/** The readings without `field`: what a shift of `field` must leave exactly as it was. */
const without = (readings: SensorMessage[], field: string) =>
  readings.map(({ [field]: _dropped, ...rest }) => rest)

describe('a mean shift in the simulator', () => {
  it('moves the measurement’s mean by sigmas × its catalog noise, and nothing else', () => {
    const torque = numeric(plant, 'chassis', 'bolt_torque')
    const noise = torque.simulation!.noise!
    assert.equal(noise, 4, 'catalog/plant.yaml: bolt torque, σ 4 N·m')
    const base = run(plant, 'chassis')
    const shifted = run(plant, 'chassis', [{ station: 'chassis', measurement: 'bolt_torque', sigmas: 1.5 }])
    assert.equal(shifted.length, N)
    // The same seed draws the same numbers: the difference is the shift itself, reading by reading.
    const moved = mean(shifted, 'bolt_torque') - mean(base, 'bolt_torque')
    assert.ok(Math.abs(moved - 1.5 * noise) < 0.01 * noise, `mean moved by ${moved}, expected 6`)
    // And against the model: nominal 200 + 6, within the drift's wander over 2,000 readings.
    const around = mean(shifted, 'bolt_torque') - (torque.simulation!.nominal! + 1.5 * noise)
    assert.ok(Math.abs(around) < 0.25 * noise, `mean ${mean(shifted, 'bolt_torque')}, expected ≈ 206`)
    // The station's other measurements, and everything else of each reading, are unchanged.
    assert.deepEqual(without(shifted, 'bolt_torque'), without(base, 'bolt_torque'))
  })

  it('shifts down by a fractional number of sigmas of the noise derived when the catalog gives none', () => {
    const catalog = new Catalog(withWelding())
    const force = numeric(catalog, 'welding', 'electrode_force')
    assert.equal(force.simulation, undefined, 'no simulation: σ is a tenth of the spec width')
    const noise = (force.spec!.usl! - force.spec!.lsl!) / 10
    const base = run(catalog, 'welding')
    const shifted = run(catalog, 'welding', [
      { station: 'welding', measurement: 'electrode_force', sigmas: -0.75 },
    ])
    const moved = mean(shifted, 'electrode_force') - mean(base, 'electrode_force')
    assert.ok(Math.abs(moved + 0.75 * noise) < 0.01 * noise, `mean moved by ${moved}, expected −0.15`)
    assert.deepEqual(without(shifted, 'electrode_force'), without(base, 'electrode_force'))
  })

  it('leaves other stations exactly as they were, spikes included', () => {
    const all = (meanShifts?: MeanShift[]) => {
      const sim = new PlantSimulator({
        catalog: plant,
        sensorsPerStation: 2,
        seed: 5,
        faultRate: 0.05,
        ...(meanShifts ? { meanShifts } : {}),
      })
      return Array.from({ length: 500 }, (_, i) => sim.tick(i * 5000)).flat()
    }
    const base = all()
    assert.deepEqual(all([]), base, 'no shift: the readings of a simulator without the option')
    const shifted = all([{ station: 'paint', measurement: 'booth_temp', sigmas: 2 }])
    const others = (readings: SensorMessage[]) => readings.filter((r) => r.station !== 'paint')
    assert.deepEqual(others(shifted), others(base))
    const paint = (readings: SensorMessage[]) => readings.filter((r) => r.station === 'paint')
    assert.deepEqual(without(paint(shifted), 'booth_temp'), without(paint(base), 'booth_temp'))
    // Each paint reading moved by 2σ = 1 °C, or not at all where a spike replaced it.
    let spikes = 0
    paint(shifted).forEach((r, i) => {
      const d = (r.booth_temp as number) - (paint(base)[i]!.booth_temp as number)
      if (d === 0) spikes++
      else assert.ok(Math.abs(d - 1) < 1e-6, `moved by ${d}`)
    })
    assert.ok(spikes > 0 && spikes < paint(base).length * 0.1, `${spikes} spikes`)
  })

  it('keeps readings inside the plausible range and an integer an integer', () => {
    const d = withWelding()
    d.lines[0]!.stations.at(-1)!.measurements.spot_count = {
      type: 'integer',
      unit: '1',
      description: 'Spots welded on the part',
      range: { min: 0, max: 40 },
      spec: { lsl: 10, target: 15, usl: 20 },
      simulation: { nominal: 15, noise: 1, drift: 0 },
    }
    const catalog = new Catalog(d)
    const shifted = run(catalog, 'welding', [
      { station: 'welding', measurement: 'spot_count', sigmas: 2.5 },
      { station: 'welding', measurement: 'weld_current', sigmas: 1000 },
    ])
    assert.ok(shifted.every((r) => Number.isInteger(r.spot_count)))
    const moved = mean(shifted, 'spot_count') - mean(run(catalog, 'welding'), 'spot_count')
    assert.ok(Math.abs(moved - 2.5) < 0.1, `integer mean moved by ${moved}, expected ≈ 2.5`)
    assert.ok(
      shifted.every((r) => r.weld_current === 30),
      'clamped to the range’s max, 30 kA',
    )
  })
})

describe('simFault (EVF_SIM_FAULT, --sim-fault)', () => {
  const fault = (station: string, measurement: string, sigmas: number): SimFault => ({
    kind: 'mean-shift',
    station,
    measurement,
    sigmas,
  })

  it('takes one fault or several, with negative and fractional sigmas', () => {
    assert.deepEqual(loadConfig({}, {}).simFault, [], 'none by default')
    assert.deepEqual(loadConfig({}, { EVF_SIM_FAULT: 'mean-shift:paint.booth_temp:2' }).simFault, [
      fault('paint', 'booth_temp', 2),
    ])
    assert.deepEqual(
      loadConfig(
        { simFault: 'mean-shift:chassis.bolt_torque:-0.5, mean-shift:battery.cell_voltage:+.25' },
        {},
      ).simFault,
      [fault('chassis', 'bolt_torque', -0.5), fault('battery', 'cell_voltage', 0.25)],
    )
    assert.deepEqual(parseSimFaults('mean-shift:paint.booth_temp:1e-1').faults, [
      fault('paint', 'booth_temp', 0.1),
    ])
  })

  it('takes the flag repeated', () => {
    const cmd = withSettings(new Command('simulate').exitOverride(), ['simFault', 'simSeed'])
    cmd.parse(
      ['--sim-fault', 'mean-shift:paint.booth_temp:1', '--sim-fault', 'mean-shift:paint.booth_humidity:-2'],
      { from: 'user' },
    )
    assert.deepEqual(loadConfig(cmd.opts(), {}).simFault, [
      fault('paint', 'booth_temp', 1),
      fault('paint', 'booth_humidity', -2),
    ])
  })

  it('reaches a child process: the environment `stack up` hands the simulator gives it back', () => {
    const config = loadConfig(
      { simFault: 'mean-shift:paint.booth_temp:1.5,mean-shift:chassis.bolt_torque:-0.25' },
      {},
    )
    const env = configToEnv(config)
    assert.equal(env.EVF_SIM_FAULT, 'mean-shift:paint.booth_temp:1.5,mean-shift:chassis.bolt_torque:-0.25')
    assert.deepEqual(loadConfig({}, env), config)
    assert.equal(configToEnv(loadConfig({}, {})).EVF_SIM_FAULT, '')
  })

  it('stops start-up on a malformed value, naming the setting and the form it takes', () => {
    const attempt = (value: string, from: 'env' | 'flag' = 'env') => {
      try {
        loadConfig(from === 'flag' ? { simFault: value } : {}, from === 'env' ? { EVF_SIM_FAULT: value } : {})
      } catch (error) {
        assert.ok(error instanceof PipelineError)
        assert.equal(error.code, 'CONFIG_INVALID')
        assert.equal(error.exitCode, 2)
        assert.match(error.message, /allowed: mean-shift:<station>\.<measurement>:<sigmas>/)
        return error.message
      }
      assert.fail(`expected a config error for ${JSON.stringify(value)}`)
    }
    assert.match(
      attempt('mean-shift:paint.booth_temp:abc'),
      /simFault \(env EVF_SIM_FAULT\).*"abc" is not a number of sigmas/,
    )
    assert.match(
      attempt('spike:paint.booth_temp:1', 'flag'),
      /simFault \(flag --sim-fault\).*"spike" is not a fault kind/,
    )
    assert.match(attempt('mean-shift:paint:1'), /"paint" is not <station>\.<measurement>/)
    assert.match(attempt('mean-shift:paint.:1'), /"paint\." is not <station>\.<measurement>/)
    assert.match(attempt('mean-shift:paint.booth_temp'), /is not <kind>:<station>\.<measurement>:<sigmas>/)
    assert.match(attempt('mean-shift:paint.booth_temp:1:2'), /is not <kind>:/)
    for (const sigmas of ['', 'Infinity', 'NaN', '0x10', '1σ', '1e999'])
      assert.match(attempt(`mean-shift:paint.booth_temp:${sigmas}`), /is not a number of sigmas/)
    // Every bad item is listed, the good ones need not be repeated.
    assert.match(
      attempt('mean-shift:x:1,mean-shift:paint.booth_temp:1,mean-shift:paint.booth_temp:y'),
      /"x" is not .*; "y" is not a number/,
    )
  })

  it('stops start-up on what the simulated catalog lacks, naming the setting and what is allowed', () => {
    const attempt = (faults: SimFault[], stations: string[] = []) => {
      try {
        checkSimFaults(faults, plant, stations)
      } catch (error) {
        assert.ok(error instanceof PipelineError)
        assert.equal(error.code, 'CONFIG_INVALID')
        assert.equal(error.exitCode, 2)
        assert.match(error.message, /simFault \(EVF_SIM_FAULT, --sim-fault\)/)
        return error.message
      }
      assert.fail(`expected a config error for ${JSON.stringify(faults)}`)
    }
    assert.match(
      attempt([fault('welding', 'weld_current', 1)]),
      /station "welding" is not in the catalog; allowed: chassis, battery, paint, quality/,
    )
    assert.match(
      attempt([fault('paint', 'booth_pressure', 1)]),
      /no measurement "booth_pressure"; allowed \(paint's numeric measurements\): booth_temp, booth_humidity, paint_thickness/,
    )
    assert.match(
      attempt([fault('quality', 'inspection_result', 1)]),
      /"inspection_result" is enum, not a number or integer/,
    )
    assert.match(attempt([fault('quality', 'defect_count', 1)]), /drawn from the inspection result/)
    assert.match(
      attempt([fault('paint', 'booth_temp', 1)], ['chassis']),
      /"paint" is not simulated; simStations: chassis/,
    )
    assert.doesNotThrow(() => checkSimFaults([fault('paint', 'booth_temp', -3)], plant, ['paint']))
  })

  it('stops the simulator before it connects to Kafka', async () => {
    const { runSimulator } = await import('../../src/simulator/index.ts')
    const { createLogger } = await import('../../src/shared/log.ts')
    const config = loadConfig({}, { EVF_SIM_FAULT: 'mean-shift:paint.gloss:1', KAFKA_BROKERS: '127.0.0.1:1' })
    await assert.rejects(runSimulator(config, createLogger('test', 'silent')), (error: Error) => {
      assert.ok(error instanceof PipelineError && error.code === 'CONFIG_INVALID')
      assert.match(error.message, /simFault \(EVF_SIM_FAULT, --sim-fault\) "mean-shift:paint\.gloss:1"/)
      return true
    })
  })
})

describe("the simulator's Kafka messages", () => {
  const catalog = plant
  it("key each reading by its sensor, on the partition the client's default partitioner picks", () => {
    const sim = new PlantSimulator({ catalog, sensorsPerStation: 3, seed: 7, faultRate: 0 })
    const first = sim.tick(0).map((r) => toMessage(r, catalog, 'sensor.'))
    const second = sim.tick(100).map((r) => toMessage(r, catalog, 'sensor.'))
    for (const [i, m] of first.entries()) {
      const reading = JSON.parse(String(m.value)) as { sensor_id: string; station: string }
      assert.equal(m.topic, `sensor.${catalog.station(reading.station)!.topic}`)
      assert.equal(String(m.key), reading.sensor_id)
      assert.equal(m.partition, defaultPartitioner(undefined as never, m.key))
      assert.equal(second[i]!.partition, m.partition, 'a sensor stays on its partition')
    }
    assert.ok(new Set(first.map((m) => m.partition % 3)).size > 1, 'sensors spread over 3 partitions')
  })
})
