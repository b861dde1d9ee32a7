/** The pieces the API's schemas share (schemas.ts, schemas-catalog.ts). */
import { type TSchema, Type } from 'typebox'

/** A station's id in an answer. */
export const StationName = Type.String({ description: 'a station of the catalog (GET /stations)' })

export const DateTime = (description?: string) => Type.String({ format: 'date-time', description })

export const Nullable = <T extends TSchema>(t: T) => Type.Union([t, Type.Null()])
