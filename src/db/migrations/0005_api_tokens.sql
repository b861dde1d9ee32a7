-- Who may call the API (docs/security.md). A credential is `evf_<id>_<secret>`: the id finds the
-- row, and only the SHA-256 of the secret is kept (the secret is 32 random bytes, so a fast hash
-- is enough; it is compared in constant time). Three kinds:
--   api      a named token with scopes, made by `evf tokens create`, revoked by `evf tokens revoke`
--   login    a one-time token in the dashboard URL `npm start` prints; redeemed once for a session
--   session  the dashboard's HttpOnly cookie, made by redeeming a login token
CREATE TABLE api_tokens (
  id           text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9]{12}$'),
  kind         text        NOT NULL CHECK (kind IN ('api', 'login', 'session')),
  name         text        NOT NULL,
  secret_hash  bytea       NOT NULL CHECK (length(secret_hash) = 32),
  scopes       text[]      NOT NULL CHECK (scopes <@ ARRAY['read', 'export', 'admin', 'metrics']),
  created_at   timestamptz NOT NULL DEFAULT now(),
  last_used_at timestamptz,
  expires_at   timestamptz,
  revoked_at   timestamptz
);
CREATE UNIQUE INDEX api_tokens_active_name ON api_tokens (name) WHERE kind = 'api' AND revoked_at IS NULL;

-- The API verifies credentials, redeems login tokens into sessions and notes last use; making and
-- revoking named tokens is the CLI's, as the database owner.
GRANT SELECT, INSERT ON api_tokens TO evf_api;
GRANT UPDATE (last_used_at, revoked_at) ON api_tokens TO evf_api;

-- The API may make sessions (redeeming a login token), never a named token or a login: rows it
-- inserts must be sessions. The owner (migrations, `evf tokens`, `stack up`) is not bound by this.
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
CREATE POLICY api_reads ON api_tokens FOR SELECT TO evf_api USING (true);
CREATE POLICY api_makes_sessions ON api_tokens FOR INSERT TO evf_api WITH CHECK (kind = 'session');
CREATE POLICY api_notes_use ON api_tokens FOR UPDATE TO evf_api USING (true);
