export { buildApp } from './app.ts'
export { type Problem, type ProblemCode, problems } from './problems.ts'
export { readTlsPair, writeSelfSigned } from './tls.ts'
