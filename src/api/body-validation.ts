import { Ajv } from 'ajv'
import formats from 'ajv-formats'
import { catalogKeyword, type LiveCatalog } from './catalog.ts'
import type { Api } from './types.ts'

/**
 * JSON bodies are validated as they come, without the type coercion query strings need: a query
 * string is text (`?limit=5` is the number 5, one `state=` a list of one), but in a body `null` is
 * not `false` or `0`, nor `"5"` a number. Routes with a body get an Ajv of their own, with the same
 * options, formats (ajv-formats, as Fastify's) and catalog keyword as Fastify's, coercion aside.
 * Their path parameters are strings and need none either.
 */
export function validateBodiesUncoerced(app: Api, live: LiveCatalog): void {
  const ajv = new Ajv({
    coerceTypes: false,
    useDefaults: true,
    removeAdditional: false,
    allErrors: true,
    addUsedSchema: false,
  })
  formats.default(ajv)
  catalogKeyword(live)(ajv)
  app.addHook('onRoute', (route) => {
    if (route.schema?.body) route.validatorCompiler ??= ({ schema }) => ajv.compile(schema)
  })
}
