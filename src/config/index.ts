export { configToEnv, loadConfig, type Overrides } from './load.ts'
export { type Config, flagFor, type Setting, type SettingKey, settings } from './settings.ts'
export {
  checkSimFaults,
  formatSimFault,
  parseSimFaults,
  SIM_FAULT_FORM,
  type SimFault,
  simFaultProblems,
} from './sim-fault.ts'
