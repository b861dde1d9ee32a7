/**
 * The catalog as the API answers it (`/stations`, `/assets`): part of the contract in schemas.ts,
 * which re-exports it.
 */
import { type Static, Type } from 'typebox'
import { DateTime, Nullable, StationName } from './schemas-common.ts'

const Range = Type.Object({ min: Type.Number(), max: Type.Number() })
const Role = Type.Optional(
  Type.Enum(['inspection_result', 'defect_count'], {
    type: 'string',
    description: 'what the quality summary reads',
  }),
)
export const NumericField = Type.Object({
  name: Type.String(),
  kind: Type.Enum(['number', 'integer'], { type: 'string' }),
  unit: Type.String({ description: 'how the unit is shown' }),
  ucum: Type.String({ description: 'the unit as a UCUM code' }),
  description: Type.String(),
  role: Role,
  precision: Type.Integer({ description: 'decimal places kept' }),
  plausible: Range,
  spec: Type.Optional(
    Type.Object(
      {
        min: Type.Number({ description: 'the lsl, or the plausible min without one' }),
        max: Type.Number({ description: 'the usl, or the plausible max without one' }),
        lsl: Type.Optional(Type.Number()),
        target: Type.Optional(Type.Number()),
        usl: Type.Optional(Type.Number()),
      },
      { description: 'the spec limits in force now (GET /stats/timeseries gives them over time)' },
    ),
  ),
})
export const EnumField = Type.Object({
  name: Type.String(),
  kind: Type.Literal('enum'),
  description: Type.String(),
  role: Role,
  values: Type.Array(Type.String()),
  pass: Type.Optional(Type.String({ description: 'the value that counts as first-pass' })),
})
export const BooleanField = Type.Object({
  name: Type.String(),
  kind: Type.Literal('boolean'),
  description: Type.String(),
  role: Role,
})
export const Station = Type.Object({
  name: StationName,
  title: Type.String(),
  description: Type.String(),
  topic_suffix: Type.String(),
  line: Type.String(),
  area: Type.String(),
  status: Type.Enum(['active', 'retired'], { type: 'string' }),
  retired_at: Type.Optional(DateTime('when it left the catalog')),
  sensors: Type.Optional(
    Type.Array(Type.String(), { description: 'its sensors, when the catalog lists them' }),
  ),
  fields: Type.Array(Type.Union([NumericField, EnumField, BooleanField])),
})
export type Station = Static<typeof Station>

const Named = { id: Type.String(), name: Type.String() }
export const Assets = Type.Object(
  {
    version: Type.Integer({ description: 'the catalog version in force' }),
    applied_at: Nullable(DateTime()),
    site: Type.Object(Named),
    areas: Type.Array(
      Type.Object({
        ...Named,
        lines: Type.Array(
          Type.Object({
            ...Named,
            stations: Type.Array(
              Type.Object({
                ...Named,
                status: Type.Enum(['active', 'retired'], { type: 'string' }),
                topic_suffix: Type.String(),
                measurements: Type.Array(Type.String()),
              }),
            ),
          }),
        ),
      }),
    ),
  },
  { description: 'the plant’s ISA-95 hierarchy: site → areas → lines → stations' },
)
