/**
 * The station catalog: the single source of truth for every station's measurements. The
 * simulator draws from `sim`, the ETL validates against `plausible` and rounds to `precision`,
 * the API serves it at /stations, and the BI views and dashboard are derived from it.
 *
 * `plausible` is what a working sensor can physically report: outside it the message is bad
 * data. `spec` is the process specification: outside it the reading is real and is a factory
 * event worth flagging, not an error.
 */

export interface NumericField {
  kind: 'number' | 'integer'
  unit: string
  description: string
  /** decimal places kept by the ETL (the reference DAG rounds readings) */
  precision: number
  plausible: readonly [min: number, max: number]
  spec: readonly [min: number, max: number]
  /** simulator model: nominal value, noise (standard deviation) and drift per reading */
  sim: { nominal: number; noise: number; drift: number }
}

export interface EnumField {
  kind: 'enum'
  unit: ''
  description: string
  values: readonly string[]
  /** simulator model: probability of each value, in `values` order */
  sim: { weights: readonly number[] }
}

export type Field = NumericField | EnumField

export interface Station {
  name: string
  title: string
  description: string
  fields: Readonly<Record<string, Field>>
}

export const stations = {
  chassis: {
    name: 'chassis',
    title: 'Chassis assembly',
    description: 'Body-in-white: bolting, spot welding and frame geometry.',
    fields: {
      bolt_torque: {
        kind: 'number',
        unit: 'N·m',
        description: 'Final torque of the last subframe bolt run',
        precision: 1,
        plausible: [0, 500],
        spec: [180, 220],
        sim: { nominal: 200, noise: 4, drift: 0.3 },
      },
      weld_current: {
        kind: 'number',
        unit: 'kA',
        description: 'Spot-weld current of the last weld',
        precision: 2,
        plausible: [0, 30],
        spec: [8, 12],
        sim: { nominal: 10, noise: 0.35, drift: 0.02 },
      },
      frame_alignment: {
        kind: 'number',
        unit: 'mm',
        description: 'Deviation of the frame datum from nominal geometry',
        precision: 2,
        plausible: [-25, 25],
        spec: [-1.5, 1.5],
        sim: { nominal: 0, noise: 0.3, drift: 0.02 },
      },
    },
  },
  battery: {
    name: 'battery',
    title: 'Battery module assembly',
    description: 'Cell stacking, module end-of-line electrical test.',
    fields: {
      cell_voltage: {
        kind: 'number',
        unit: 'V',
        description: 'Open-circuit voltage of the module cell group',
        precision: 3,
        plausible: [0, 5],
        spec: [3.55, 3.75],
        sim: { nominal: 3.65, noise: 0.015, drift: 0.001 },
      },
      module_temp: {
        kind: 'number',
        unit: '°C',
        description: 'Module temperature during the end-of-line test',
        precision: 1,
        plausible: [-40, 120],
        spec: [15, 35],
        sim: { nominal: 25, noise: 1.2, drift: 0.08 },
      },
      insulation_resistance: {
        kind: 'number',
        unit: 'MΩ',
        description: 'High-voltage insulation resistance to chassis ground',
        precision: 0,
        plausible: [0, 20000],
        spec: [500, 20000],
        sim: { nominal: 2200, noise: 250, drift: 10 },
      },
    },
  },
  paint: {
    name: 'paint',
    title: 'Paint shop',
    description: 'Booth climate and wet-film thickness, as in the reference system.',
    fields: {
      booth_temp: {
        kind: 'number',
        unit: '°C',
        description: 'Spray booth air temperature',
        precision: 1,
        plausible: [-10, 60],
        spec: [18, 26],
        sim: { nominal: 22, noise: 0.5, drift: 0.05 },
      },
      booth_humidity: {
        kind: 'number',
        unit: '%RH',
        description: 'Spray booth relative humidity',
        precision: 1,
        plausible: [0, 100],
        spec: [50, 70],
        sim: { nominal: 60, noise: 2, drift: 0.2 },
      },
      paint_thickness: {
        kind: 'number',
        unit: 'mil',
        description: 'Paint film thickness (thousandths of an inch)',
        precision: 3,
        plausible: [0, 10],
        spec: [1.0, 1.3],
        sim: { nominal: 1.15, noise: 0.03, drift: 0.002 },
      },
    },
  },
  quality: {
    name: 'quality',
    title: 'Quality inspection',
    description: 'End-of-line vehicle inspection.',
    fields: {
      defect_count: {
        kind: 'integer',
        unit: 'defects',
        description: 'Defects found on the inspected vehicle',
        precision: 0,
        plausible: [0, 1000],
        spec: [0, 3],
        sim: { nominal: 0.6, noise: 0.9, drift: 0 },
      },
      inspection_result: {
        kind: 'enum',
        unit: '',
        description: 'Outcome of the inspection',
        values: ['PASS', 'FAIL', 'REWORK'],
        sim: { weights: [0.9, 0.03, 0.07] },
      },
    },
  },
} as const satisfies Record<string, Station>

export type StationName = keyof typeof stations
export const stationNames = Object.keys(stations) as StationName[]
