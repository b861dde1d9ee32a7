export { buildApp } from './app.ts'
export { type Problem, type ProblemCode, problems } from './problems.ts'
export { readTlsPair, writeSelfSigned } from './tls.ts'
export {
  CREDENTIAL,
  type Issued,
  issueToken,
  newLoginToken,
  newLoginUrl,
  type Refusal,
  SCOPES,
  type Scope,
  type TokenKind,
  type Verified,
  verifyToken,
} from './tokens.ts'
