/**
 * The API's contract, in one place: every parameter and every answer as a TypeBox schema. The
 * same object is the JSON Schema that Fastify validates requests and serialises answers with, the
 * OpenAPI document at `/docs/json` (which schemathesis fuzzes the API against), and — through
 * `Static<…>` — the TypeScript type that the handlers return and the dashboard reads
 * (web/src/api.ts imports these types). The catalog is data, applied live: a parameter naming a
 * station or a measurement carries `x-catalog` (api/catalog.ts checks it against the catalog in
 * force, and puts the current `enum` into the OpenAPI document). Depends on nothing else, so the
 * browser build can import its types.
 */
import { type Static, type TSchema, Type } from 'typebox'
import { AlarmEvaluation, PipelineAlarms } from './schemas-alarms.ts'
import { DateTime, Nullable, Query, StationName, StationParam, TIME, TimeParam } from './schemas-common.ts'
import { IngestSources, StaleSensors } from './schemas-sources.ts'

export { EPOCH_PATTERN, StationParam, TimeParam } from './schemas-common.ts'

// ── Parameters ─────────────────────────────────────────────────────────────────────────────────

export const BUCKETS = ['1m', '1h'] as const
export type Bucket = (typeof BUCKETS)[number]
const BucketParam = (fallback: Bucket) =>
  Type.Enum(BUCKETS, { type: 'string', default: fallback, description: 'minutes or hours' })

/** A window of reading time: both bounds optional, `from` before `to`. */
const Window = { from: Type.Optional(TimeParam()), to: Type.Optional(TimeParam()) }

export const SensorDataQuery = Query({
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100, description: 'readings per page' }),
  station: Type.Optional(StationParam),
  since: Type.Optional(TimeParam(`reading time ≥ this: ${TIME}`)),
  until: Type.Optional(TimeParam(`reading time < this: ${TIME}`)),
  before_id: Type.Optional(
    Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER, description: 'cursor: ids below this' }),
  ),
})
export type SensorDataQuery = Static<typeof SensorDataQuery>

export const StreamQuery = Query({ station: Type.Optional(StationParam) })
export const StreamHeaders = Type.Object({
  'last-event-id': Type.Optional(
    Type.String({ pattern: '^[0-9]{1,15}$', description: 'the id of the last reading received' }),
  ),
})

/** One Server-Sent Event of /sensor-data/stream. */
export const ReadingEvent = Type.Object(
  {
    event: Type.Literal('reading'),
    id: Type.String({ pattern: '^[0-9]+$', description: 'the reading’s id: send it back as Last-Event-ID' }),
    data: Type.String({
      contentMediaType: 'application/json',
      description: 'the reading, as /sensor-data answers it',
    }),
  },
  { description: 'one event per reading' },
)

export const StationPath = Type.Object({ station: StationParam })

export const WindowQuery = Query(Window)
export type WindowQuery = Static<typeof WindowQuery>

export const TimeseriesQuery = Query({
  station: StationParam,
  field: Type.String({
    'x-catalog': 'measurement',
    description: 'a numeric measurement of the station (GET /stations lists each station’s)',
  }),
  bucket: BucketParam('1m'),
  ...Window,
})

export const QualityQuery = Query({
  bucket: BucketParam('1h'),
  station: Type.Optional({
    ...StationParam,
    description: 'an inspection station (one with an inspection_result); default: the first',
  }),
  ...Window,
})

export const ExportQuery = Query({
  format: Type.Enum(['csv', 'ndjson'], { type: 'string' }),
  station: Type.Optional(StationParam),
  ...Window,
})

// ── Answers ────────────────────────────────────────────────────────────────────────────────────

export { Assets, BooleanField, EnumField, NumericField, Station } from './schemas-catalog.ts'

export const ReadingData = Type.Intersect(
  [
    Type.Object({
      station: StationName,
      timestamp: Type.Number({ description: 'reading time, epoch seconds' }),
      processed_at: Type.String({ format: 'date-time', description: 'when the ETL transformed it' }),
      sensor_id: Type.Optional(Type.String()),
      line: Type.Optional(Type.String()),
      seq: Type.Optional(Type.Integer({ description: 'the producer’s sequence number per sensor' })),
      out_of_spec: Type.Optional(
        Type.Array(Type.String(), { description: 'fields outside their specification' }),
      ),
    }),
    Type.Record(Type.String(), Type.Unknown()),
  ],
  { description: 'the transformed reading: its station’s measurements (GET /stations) and these' },
)

export const Reading = Type.Object({
  id: Type.Integer(),
  station: StationName,
  data: ReadingData,
  created_at: DateTime('when the ETL loaded it'),
})
export type Reading = Static<typeof Reading>

export const LatestReading = Type.Object({
  ...Reading.properties,
  stale_sensors: Type.Array(
    Type.Object({
      sensor_id: Type.String(),
      since: DateTime('when its source said it went offline'),
      reason: Type.String({ description: 'what said so: a Sparkplug NDEATH or DDEATH' }),
    }),
    {
      description:
        'sensors of the station whose source declared them offline (docs/devices.md): their last values are stale, not quiet; empty when none',
    },
  ),
})
export type LatestReading = Static<typeof LatestReading>

export const Counts = Type.Object({
  from: DateTime(),
  to: DateTime(),
  stations: Type.Array(Type.Object({ station: StationName, records: Type.Integer() })),
})
export type Counts = Static<typeof Counts>

export const Timeseries = Type.Object({
  station: StationName,
  field: Type.String(),
  unit: Type.String(),
  limits: Type.Array(
    Type.Object({
      from: Nullable(DateTime('in force from (null: from the start)')),
      lsl: Nullable(Type.Number()),
      target: Nullable(Type.Number()),
      usl: Nullable(Type.Number()),
    }),
    {
      description:
        'the spec limits in force over the window, oldest first: points are judged by the ones of their time',
    },
  ),
  bucket: Type.Enum(BUCKETS, { type: 'string' }),
  from: DateTime('where the first bucket starts'),
  to: DateTime(),
  points: Type.Array(
    Type.Object({
      t: DateTime('the bucket’s start'),
      count: Type.Integer(),
      min: Type.Number(),
      max: Type.Number(),
      mean: Type.Number(),
      stddev: Nullable(Type.Number()),
    }),
  ),
})
export type Timeseries = Static<typeof Timeseries>

/** One number per inspection result of the catalog. */
const PerResult = <T extends TSchema>(t: T) =>
  Type.Record(Type.String(), t, { description: 'per result of the inspection, in catalog order' })

export const QualitySummary = Type.Object({
  from: DateTime(),
  to: DateTime(),
  bucket: Type.Enum(BUCKETS, { type: 'string' }),
  station: Type.String({ description: 'the inspection station' }),
  inspections: Type.Integer(),
  counts: PerResult(Type.Integer()),
  rates: PerResult(Nullable(Type.Number())),
  first_pass_yield: Nullable(Type.Number()),
  defects: Type.Object({ total: Type.Number(), per_inspection: Nullable(Type.Number()) }),
  series: Type.Array(
    Type.Object(
      { t: DateTime(), defects: Type.Number() },
      {
        additionalProperties: Type.Integer(),
        description: 'per bucket: its defects and inspections per result',
      },
    ),
  ),
})
export type QualitySummary = Static<typeof QualitySummary>

/** A rejected message as people read it (`/dead-letters`, and the newest in `/pipeline/status`). */
export const DeadLetter = Type.Object({
  id: Type.Integer(),
  topic: Type.String(),
  partition: Type.Integer(),
  offset: Type.Integer(),
  reason_code: Type.String(),
  reason: Type.String(),
  attempts: Type.Integer(),
  created_at: DateTime(),
  resolved_at: Nullable(DateTime()),
  key: Nullable(Type.String({ description: 'UTF-8, or 0x… hex' })),
  value_preview: Type.String({ description: 'the first 120 characters of the message' }),
  value_bytes: Type.Integer(),
})

export const PartitionHealth = Type.Object({
  topic: Type.String(),
  partition: Type.Integer(),
  next_offset: Type.Integer(),
  end_offset: Nullable(Type.Integer()),
  lag: Nullable(Type.Integer({ description: 'messages in Kafka not yet loaded, as of end_offset_at' })),
  end_offset_at: Nullable(DateTime()),
  behind_sec: Nullable(Type.Integer({ description: 'seconds behind with no progress' })),
  blocked_reason: Nullable(
    Type.String({
      description:
        'why the ETL holds this partition back: a record batch it cannot decode, with its offsets (`evf etl skip` moves past it)',
    }),
  ),
  stalled: Type.Boolean({
    description: 'behind with no progress for stall_sec, or held back (blocked_reason)',
  }),
})

export const KafkaNodes = Type.Object(
  {
    nodes: Type.Array(
      Type.Object({
        node_id: Type.Integer(),
        address: Type.String(),
        up: Type.Boolean(),
        since: DateTime('when it last started or died'),
        restarts: Type.Integer(),
      }),
    ),
    down: Type.Integer(),
    quorum_lost: Type.Boolean({ description: 'a majority of the nodes is down: production stalls' }),
  },
  { description: 'the embedded Kafka cluster’s nodes (`--kafka-nodes 3`); empty with one node' },
)

export const PipelineStatus = Type.Object({
  from: DateTime(),
  to: DateTime(),
  etl: Type.Object({
    last_commit_at: Nullable(DateTime()),
    seconds_since: Nullable(Type.Integer()),
    stalled: Type.Boolean({ description: 'messages wait in Kafka and nothing was committed for stall_sec' }),
    stall_sec: Type.Integer(),
    last_run: Nullable(
      Type.Object({
        mode: Type.String(),
        started_at: DateTime(),
        finished_at: Nullable(DateTime()),
        status: Type.String({ description: 'ok, failed, or running' }),
        rows: Type.Integer(),
        dead_letters: Type.Integer(),
        error: Nullable(Type.String()),
      }),
    ),
  }),
  lag: Type.Object({ total: Type.Integer(), partitions: Type.Array(PartitionHealth) }),
  kafka: KafkaNodes,
  replica: Nullable(
    Type.Object(
      {
        standby: Type.Boolean({ description: 'the server read from is in recovery (a hot standby)' }),
        lag_seconds: Nullable(
          Type.Number({ description: 'replay behind the primary; 0 when all received is replayed' }),
        ),
        replay_behind_bytes: Nullable(Type.Number()),
      },
      { description: 'the hot standby readings are read from (DATABASE_READ_URL); null without one' },
    ),
  ),
  ingest: Type.Object({
    rows: Type.Integer({ description: 'readings loaded whose reading time is in the window' }),
    rows_per_second: Type.Number({
      description: 'the window’s average: `rows` over the window’s length (not the current rate)',
    }),
    current_rows_per_second: Type.Number({
      description:
        'the current ingest rate: readings the ETL committed in the last `current_sec` seconds, per second',
    }),
    current_sec: Type.Integer({ description: 'the seconds `current_rows_per_second` is measured over' }),
  }),
  dead_letters: Type.Object({
    total: Type.Integer(),
    by_reason: Type.Array(Type.Object({ reason_code: Type.String(), count: Type.Integer() })),
    recent: Type.Array(
      Type.Pick(DeadLetter, ['id', 'topic', 'partition', 'offset', 'reason_code', 'reason', 'created_at']),
    ),
  }),
  alarms: PipelineAlarms,
  sources: IngestSources,
  stale_sensors: StaleSensors,
})
export type PipelineStatus = Static<typeof PipelineStatus>

export const Health = Type.Object({ status: Type.Literal('ok') })

export const Ready = Type.Object({
  status: Type.Enum(['ready', 'degraded', 'stalled', 'kafka-unavailable'], { type: 'string' }),
  kafka: KafkaNodes,
  alarms: AlarmEvaluation,
  sources: IngestSources,
  database: Type.Literal('ok'),
  etl: Type.Object({
    last_commit_at: Nullable(DateTime()),
    seconds_since: Nullable(Type.Integer()),
    lag: Nullable(Type.Integer()),
    lag_as_of: Nullable(DateTime()),
    stalled: Type.Boolean(),
    stall_sec: Type.Integer(),
    stalled_partitions: Type.Array(
      Type.Object({
        topic: Type.String(),
        partition: Type.Integer(),
        lag: Nullable(Type.Integer()),
        behind_sec: Nullable(Type.Integer()),
        reason: Nullable(Type.String({ description: 'why it cannot go on, when the ETL holds it back' })),
      }),
    ),
  }),
})
export type Ready = Static<typeof Ready>

// ── Problems ───────────────────────────────────────────────────────────────────────────────────

/**
 * Every error the API returns, in one table: a stable code, its HTTP status and title. Rendered
 * as RFC 9457 `application/problem+json`. `docs/api.md` lists the same codes (a test checks).
 */
export const problems = {
  BAD_PARAMETER: { status: 400, title: 'A request parameter is invalid' },
  NOT_FOUND: { status: 404, title: 'No such resource' },
  UNAUTHENTICATED: { status: 401, title: 'No valid credential' },
  FORBIDDEN: { status: 403, title: 'The credential lacks the scope this needs' },
  METHOD_NOT_ALLOWED: { status: 405, title: 'The resource does not answer this method' },
  CONFLICT: { status: 409, title: 'The resource’s state does not allow this' },
  RATE_LIMITED: { status: 429, title: 'Too many requests' },
  INTERNAL: { status: 500, title: 'Internal error' },
  DATABASE_UNAVAILABLE: { status: 503, title: 'The database is not reachable' },
} as const
export type ProblemCode = keyof typeof problems

export const Problem = Type.Object(
  {
    type: Type.String({ description: 'a link to the code in /docs/problems' }),
    title: Type.String(),
    status: Type.Integer(),
    detail: Type.String({ description: 'what is wrong, for a person' }),
    code: Type.Enum(Object.keys(problems) as ProblemCode[], { type: 'string' }),
    instance: Type.Optional(Type.String({ description: 'the request’s path and query' })),
    errors: Type.Optional(
      Type.Array(Type.Object({ parameter: Type.String(), message: Type.String() }), {
        description: 'one entry per invalid parameter',
      }),
    ),
  },
  { description: 'RFC 9457 problem details' },
)
export type Problem = Static<typeof Problem>

// ── Pipeline internals (scope admin) ───────────────────────────────────────────────────────────

export const DeadLettersQuery = Query({
  reason: Type.Optional(
    Type.String({ pattern: '^[A-Z_]{1,40}$', description: 'a reason code (docs/etl.md)' }),
  ),
  topic: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._-]{1,249}$', description: 'a Kafka topic' })),
  include_resolved: Type.Boolean({ default: false, description: 'also the ones re-driven since' }),
  limit: Type.Integer({ minimum: 1, maximum: 1000, default: 50 }),
})
