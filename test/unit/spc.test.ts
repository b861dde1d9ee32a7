import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { capability, D2, individualsChart, movingRanges } from '../../web/src/spc.ts'

const close = (actual: number | null, expected: number, what: string) =>
  assert.ok(actual != null && Math.abs(actual - expected) < 1e-9, `${what}: ${actual} ≠ ${expected}`)

describe('the SPC individuals chart', () => {
  it('takes sigma from the average moving range over d2 and puts the limits at ±3 sigma', () => {
    const xs = [10, 12, 11, 13, 12]
    assert.deepEqual(movingRanges(xs), [2, 1, 2, 1])
    const c = individualsChart(xs)!
    close(c.mean, 11.6, 'centre')
    close(c.mrBar, 1.5, 'MR̄')
    close(c.sigma, 1.5 / D2, 'sigma')
    close(c.ucl, 11.6 + (3 * 1.5) / 1.128, 'UCL')
    close(c.lcl, 11.6 - (3 * 1.5) / 1.128, 'LCL')
    assert.deepEqual(c.outOfControl, [])
    assert.equal(c.cp, null, 'no spec limits, no capability')
  })

  it('flags a spike beyond the control limits, on either side, by its index', () => {
    const base = Array.from({ length: 40 }, (_, i) => 1.15 + (i % 2 ? 0.01 : -0.01))
    const xs = [...base.slice(0, 20), 1.6, ...base.slice(20), 0.7]
    const c = individualsChart(xs)!
    assert.deepEqual(c.outOfControl, [20, 41])
    assert.ok(c.ucl < 1.6 && c.lcl > 0.7)
  })

  it('computes Cp from the spec width and Cpk from the nearer spec limit', () => {
    close(capability(1.15, 0.025, { min: 1, max: 1.3 }).cp, 0.3 / 0.15, 'Cp centred')
    close(capability(1.15, 0.025, { min: 1, max: 1.3 }).cpk, 0.15 / 0.075, 'Cpk centred')
    close(capability(1.25, 0.025, { min: 1, max: 1.3 }).cpk, 0.05 / 0.075, 'Cpk off centre')
    close(capability(1.35, 0.025, { min: 1, max: 1.3 }).cpk, -0.05 / 0.075, 'Cpk outside the spec')
    const c = individualsChart([1.1, 1.2, 1.1, 1.2], { min: 1, max: 1.3 })!
    close(c.cp, 0.3 / (6 * (0.1 / D2)), 'Cp of a chart')
  })

  it('gives no chart for fewer than two readings, and no capability when every reading is equal', () => {
    assert.equal(individualsChart([]), null)
    assert.equal(individualsChart([1.2]), null)
    const flat = individualsChart([1.2, 1.2, 1.2], { min: 1, max: 1.3 })!
    assert.equal(flat.sigma, 0)
    assert.deepEqual(flat.outOfControl, [])
    assert.equal(flat.cp, null)
    assert.equal(flat.cpk, null)
  })
})
