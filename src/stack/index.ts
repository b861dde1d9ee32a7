export { removeEndpoints, withEndpoints, writeEndpoints } from './endpoints.ts'
export { type Services, startServices } from './services.ts'
export { cliPath, formatLine, Supervisor, stackSupervisor } from './supervisor.ts'
export { stackUp } from './up.ts'
