import { PipelineError } from '../errors/index.ts'
import type { StartSource } from './types.ts'

/** Not built yet (issue 23). */
export const startMqtt: StartSource = async (plan) => {
  throw new PipelineError('CONFIG_INVALID', `${plan.kind} sources are not built yet`)
}
