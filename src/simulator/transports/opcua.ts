import { PipelineError } from '../../errors/index.ts'
import type { OpenTransport } from './types.ts'

/** Not built yet (issue 23). */
export const open: OpenTransport = async ({ config }) => {
  throw new PipelineError('CONFIG_INVALID', `simTransport ${config.simTransport} is not built yet`)
}
