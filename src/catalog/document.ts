/**
 * The catalog file's shape, as a JSON Schema (TypeBox): what `catalog/plant.yaml` may hold. The
 * same schema is written to `catalog/catalog.schema.json` for editors, and checks every file
 * before the rules a schema cannot say (validate.ts). Its reference is docs/catalog.md.
 */
import { type Static, type TSchema, Type } from 'typebox'

/** A station or measurement id: it names a JSON field, a SQL column and a BI view. */
export const NAME_PATTERN = '^[a-z][a-z0-9_]{0,47}$'
/** An area, line or sensor id: what plants call them (`L1`, `weld-cell-2`). */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$'

const Text = (description: string, maxLength = 200) => Type.String({ minLength: 1, maxLength, description })
const Id = (description: string) => Type.String({ pattern: ID_PATTERN, description })
const Strict = <T extends Parameters<typeof Type.Object>[0]>(properties: T, description: string) =>
  Type.Object(properties, { additionalProperties: false, description })
const Finite = (description: string) => Type.Number({ description })

const Spec = Strict(
  {
    lsl: Type.Optional(Finite('lower specification limit')),
    target: Type.Optional(Finite('the nominal value the process aims at')),
    usl: Type.Optional(Finite('upper specification limit')),
  },
  'specification limits: a reading outside [lsl, usl] is out of spec (kept, and flagged)',
)

const Range = Strict(
  { min: Finite('lowest value the sensor can report'), max: Finite('highest value') },
  'the plausible range: what a working sensor can report; a reading outside it is a dead letter',
)

const common = {
  description: Text('what is measured'),
  role: Type.Optional(
    Type.Union([Type.Literal('inspection_result'), Type.Literal('defect_count')], {
      description:
        'what the quality summary reads: the inspection outcome (an enum with `pass`) or the defects found (an integer)',
    }),
  ),
  column: Type.Optional(
    Type.String({
      pattern: NAME_PATTERN,
      description: 'its column in the BI view (default: the name with its unit symbol)',
    }),
  ),
}

const numeric = {
  unit: Type.String({
    minLength: 1,
    maxLength: 40,
    description: 'a UCUM unit code (N.m, Cel, kA, [mil_us])',
  }),
  symbol: Type.Optional(Text('how the unit is shown (N·m, °C); default: the UCUM code', 20)),
  range: Range,
  spec: Type.Optional(Spec),
  simulation: Type.Optional(
    Strict(
      {
        nominal: Type.Optional(Finite('mean (default: the target, or the middle of the spec or range)')),
        noise: Type.Optional(Type.Number({ minimum: 0, description: 'standard deviation per reading' })),
        drift: Type.Optional(Type.Number({ minimum: 0, description: 'random-walk step per reading' })),
      },
      'how the simulator draws it (defaults from the spec limits)',
    ),
  ),
}

const NumberMeasurement = Strict(
  {
    type: Type.Literal('number'),
    ...common,
    ...numeric,
    decimals: Type.Integer({ minimum: 0, maximum: 9, description: 'decimal places the ETL keeps' }),
  },
  'a real-valued measurement',
)

const IntegerMeasurement = Strict(
  {
    type: Type.Literal('integer'),
    ...common,
    ...numeric,
    decimals: Type.Optional(Type.Literal(0, { description: 'always 0' })),
  },
  'a count',
)

const EnumMeasurement = Strict(
  {
    type: Type.Literal('enum'),
    ...common,
    values: Type.Array(Type.String({ minLength: 1, maxLength: 60 }), {
      minItems: 1,
      maxItems: 100,
      description: 'the values it may take, in the order they are shown',
    }),
    pass: Type.Optional(Type.String({ description: 'the value that counts as a first-pass success' })),
    simulation: Type.Optional(
      Strict(
        {
          weights: Type.Array(Type.Number({ minimum: 0 }), {
            description: 'probability of each value, in `values` order',
          }),
        },
        'how the simulator draws it (default: equal weights)',
      ),
    ),
  },
  'one of a list of values',
)

const BooleanMeasurement = Strict(
  {
    type: Type.Literal('boolean'),
    ...common,
    simulation: Type.Optional(
      Strict({ p_true: Type.Number({ minimum: 0, maximum: 1 }) }, 'probability of `true` (default 0.5)'),
    ),
  },
  'true or false',
)

const measurementTypes = [NumberMeasurement, IntegerMeasurement, EnumMeasurement, BooleanMeasurement]

/** One of the four, told apart by `type` (a discriminator: an error names the branch's own fields). */
export const Measurement = Type.Unsafe<Static<(typeof measurementTypes)[number]>>({
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: measurementTypes,
  description: 'a measurement: a type, a unit, decimals, a plausible range, spec limits',
})
export type Measurement = Static<typeof Measurement>
export type NumericMeasurement = Extract<Measurement, { type: 'number' | 'integer' }>
export type EnumMeasurement = Extract<Measurement, { type: 'enum' }>

const Measurements = (description: string) =>
  Type.Record(Type.String({ pattern: NAME_PATTERN }), Type.String({ minLength: 1, maxLength: 400 }), {
    minProperties: 1,
    description,
  })

const MqttSource = Strict(
  {
    type: Type.Literal('mqtt'),
    topic: Type.String({
      minLength: 1,
      maxLength: 400,
      description:
        'the MQTT topic filter its readings arrive on, one reading per message in our JSON (docs/etl.md); the sensor is the payload’s `sensor_id`, or the last topic level',
    }),
  },
  'readings as JSON messages on an MQTT broker (QoS 1, a persistent session)',
)

const SparkplugSource = Strict(
  {
    type: Type.Literal('sparkplug'),
    group: Type.String({ pattern: '^[^/+#]+$', description: 'the Sparkplug group id' }),
    node: Type.String({
      pattern: '^[^/+#]+$',
      description: 'the edge node id; each of its devices is a sensor',
    }),
    metrics: Type.Optional(
      Measurements('the metric name feeding each measurement (default: the measurement’s own name)'),
    ),
  },
  'a Sparkplug B 3.0 edge node: its devices (or the node itself) are the sensors',
)

const Deadband = Strict(
  {
    type: Type.Union([Type.Literal('absolute'), Type.Literal('percent')]),
    value: Type.Number({ minimum: 0, description: 'in the unit, or percent of the node’s EURange' }),
  },
  'changes smaller than this produce no reading (an OPC UA DataChangeFilter)',
)

const OpcuaSource = Strict(
  {
    type: Type.Literal('opcua'),
    sampling_interval_ms: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 3_600_000,
        description: 'how often the server samples (default 1000)',
      }),
    ),
    deadband: Type.Optional(Deadband),
    sensors: Type.Array(
      Strict(
        {
          id: Id('the `sensor_id` of its readings'),
          nodes: Measurements('the OPC UA node id feeding each measurement (`ns=1;s=Paint.BoothTemp`)'),
        },
        'a sensor and its nodes',
      ),
      { minItems: 1 },
    ),
  },
  'OPC UA nodes, monitored with a subscription',
)

export const Source = Type.Unsafe<Static<typeof MqttSource | typeof SparkplugSource | typeof OpcuaSource>>({
  type: 'object',
  required: ['type'],
  discriminator: { propertyName: 'type' },
  oneOf: [MqttSource, SparkplugSource, OpcuaSource],
  description:
    'where a station’s readings come from, when a device sends them (docs/devices.md); without one, the simulator',
})
export type Source = Static<typeof Source>
export type MqttSource = Extract<Source, { type: 'mqtt' }>
export type SparkplugSource = Extract<Source, { type: 'sparkplug' }>
export type OpcuaSource = Extract<Source, { type: 'opcua' }>

export const Station = Strict(
  {
    id: Type.String({ pattern: NAME_PATTERN, description: 'the `station` of its readings' }),
    name: Text('its name, as people say it'),
    description: Type.Optional(Text('what it does', 500)),
    topic: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: 180,
        description: 'its Kafka topic after the topic prefix (default: its id)',
      }),
    ),
    sensors: Type.Optional(
      Type.Array(
        Strict({ id: Id('the `sensor_id` of its readings'), name: Type.Optional(Text('')) }, 'a sensor'),
        {
          minItems: 1,
          description: 'the sensors it has; when listed, a reading from another sensor is a dead letter',
        },
      ),
    ),
    source: Type.Optional(Source),
    measurements: Type.Record(Type.String({ pattern: NAME_PATTERN }), Measurement, {
      minProperties: 1,
      description: 'what each of its readings carries, by name',
    }),
  },
  'a work unit of ISA-95: one message per reading, from one of its sensors',
)
export type Station = Static<typeof Station>

export const CatalogDocument = Strict(
  {
    $schema: Type.Optional(Type.String()),
    catalog: Type.Literal(1, { description: 'the file format version' }),
    site: Strict({ id: Id('the site'), name: Text('its name') }, 'the plant'),
    areas: Type.Array(Strict({ id: Id('an area'), name: Text('its name') }, 'an area of the site'), {
      minItems: 1,
    }),
    lines: Type.Array(
      Strict(
        {
          id: Id('a line'),
          name: Text('its name'),
          area: Id('the area it is in'),
          stations: Type.Array(Station, { minItems: 1 }),
        },
        'a production line of an area',
      ),
      { minItems: 1 },
    ),
  },
  'the plant catalog (ISA-95: site → area → line → station → measurements)',
)
export type CatalogDocument = Static<typeof CatalogDocument>

/** The schema as a standalone JSON Schema document, for editors (`catalog/catalog.schema.json`). */
export function catalogJsonSchema(): TSchema {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'https://evf.example/catalog.schema.json',
    title: 'EV factory plant catalog',
    ...CatalogDocument,
  }
}
