export { configToEnv, loadConfig, type Overrides } from './load.ts'
export { type Config, flagFor, type SettingKey, settings } from './settings.ts'
