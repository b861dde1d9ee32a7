/** The pieces the API's schemas share (schemas.ts, schemas-catalog.ts, schemas-alarms.ts). */
import { type TProperties, type TSchema, Type } from 'typebox'

/** A station's id in an answer. */
export const StationName = Type.String({ description: 'a station of the catalog (GET /stations)' })

export const DateTime = (description?: string) => Type.String({ format: 'date-time', description })

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])

/** Epoch seconds, up to microseconds. */
export const EPOCH_PATTERN = '^[0-9]{1,11}(\\.[0-9]{1,6})?$'

export const TIME =
  'an RFC 3339 date-time with its zone (2026-01-31T08:00:00Z), a date (2026-01-31, midnight UTC) or epoch seconds (1769846400)'

/** A point in time: an RFC 3339 date-time with its zone, a date (midnight UTC) or epoch seconds. */
export const TimeParam = (description = TIME) =>
  Type.Union(
    [
      Type.String({ format: 'date-time' }),
      Type.String({ format: 'date' }),
      Type.String({ pattern: EPOCH_PATTERN }),
    ],
    { description },
  )

/** A station of the catalog, taking readings or retired (its history stays served). */
export const StationParam = Type.String({
  'x-catalog': 'station',
  description: 'a station of the catalog (GET /stations), retired ones included',
})

/**
 * The query parameters of a route, none other allowed. A parameter with a default is optional to
 * the caller (Ajv fills the default in) and always present to the handler, as its type says.
 */
export function Query<T extends TProperties>(properties: T) {
  const schema = Type.Object(properties, { additionalProperties: false })
  const required = ((schema.required ?? []) as string[]).filter(
    (k) => !('default' in (properties[k] as object)),
  )
  return { ...schema, required } as typeof schema
}
