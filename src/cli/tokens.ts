import { type Command, Option } from 'commander'
// The token policy on its own, not api/index.ts: `--scope`'s choices are needed before any
// command runs, and the API's index would load Fastify into every `evf` command.
import { SCOPES, type Scope } from '../api/tokens.ts'
import { PipelineError } from '../errors/index.ts'
import { configOf, SETTINGS, withPool, withSettings } from './options.ts'

/** Who may call the API: `tokens create`, `list`, `revoke`, and the dashboard's `login-url`. */
export function tokenCommands(program: Command): void {
  const tokens = program.command('tokens').description('API tokens: who may call the API (docs/security.md)')
  withSettings(
    tokens
      .command('create')
      .description('make a token and print it, once (only its hash is kept)')
      .requiredOption('--name <name>', 'what the token is for, unique among active tokens')
      .addOption(new Option('--scope <scope...>', 'what it may do').choices(SCOPES).makeOptionMandatory())
      .option('--json', 'print {"token", "id", "name", "scopes"} as JSON'),
    SETTINGS.DB,
  ).action(create)
  withSettings(
    tokens
      .command('list')
      .description('named tokens: id, name, scopes, created, last used, revoked (never secrets)')
      .option('--json', 'as JSON'),
    SETTINGS.DB,
  ).action(list)
  withSettings(
    tokens
      .command('revoke')
      .description('revoke the active token of this name or id')
      .argument('<name-or-id>'),
    SETTINGS.DB,
  ).action(revoke)
  withSettings(
    program
      .command('login-url')
      .description('print a new one-time dashboard login URL (earlier unused ones stop working)'),
    [...SETTINGS.DB, 'apiHost', 'apiPort', 'apiTlsCert'],
  ).action(loginUrl)
}

async function create(o: { name: string; scope: Scope[]; json?: boolean }, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const { issueToken } = await import('../api/tokens.ts')
  await withPool(config, async (pool) => {
    const scopes = [...new Set(o.scope)]
    const { id, token } = await issueToken(pool, 'api', o.name, scopes)
    process.stdout.write(
      o.json
        ? `${JSON.stringify({ token, id, name: o.name, scopes })}\n`
        : `${token}\n\nThe token is shown once: keep it in a secret store. Send it as \`Authorization: Bearer <token>\`.\n`,
    )
  })
}

async function list(o: { json?: boolean }, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const { listTokens } = await import('../db/index.ts')
  const tokens = await withPool(config, listTokens)
  if (o.json) process.stdout.write(`${JSON.stringify(tokens)}\n`)
  else
    for (const t of tokens)
      process.stdout.write(
        `${t.id}  ${t.name}  ${t.scopes.join(',')}  created ${t.created_at.toISOString()}  last used ${t.last_used_at?.toISOString() ?? 'never'}${t.revoked_at ? `  REVOKED ${t.revoked_at.toISOString()}` : ''}\n`,
      )
}

async function revoke(nameOrId: string, _o: unknown, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const { revokeToken } = await import('../db/index.ts')
  if (!(await withPool(config, (pool) => revokeToken(pool, nameOrId))))
    throw new PipelineError('CONFIG_INVALID', `no active token named or with id "${nameOrId}"`)
  process.stdout.write(`revoked ${nameOrId}\n`)
}

async function loginUrl(_o: unknown, cmd: Command): Promise<void> {
  const config = await configOf(cmd, ['database'])
  const [{ newLoginUrl }, { apiBase }] = await Promise.all([
    import('../api/tokens.ts'),
    import('../shared/http.ts'),
  ])
  process.stdout.write(`${await withPool(config, (pool) => newLoginUrl(pool, apiBase(config)))}\n`)
}
