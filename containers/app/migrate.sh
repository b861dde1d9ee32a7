#!/bin/sh
# compose's one-shot `migrate` service: apply the SQL migrations, then give the least-privilege
# roles evf_etl, evf_api and evf_bi a login with the passwords from the environment (.env).
# `evf db roles` reads the passwords from <data-dir>/db-roles.json, so they are written there
# first, in a private temporary directory that is removed afterwards. Its output (the roles'
# URLs, passwords included) is not printed: secrets stay out of the logs.
set -eu
: "${EVF_ETL_DB_PASSWORD:?set EVF_ETL_DB_PASSWORD}"
: "${EVF_API_DB_PASSWORD:?set EVF_API_DB_PASSWORD}"
: "${EVF_BI_DB_PASSWORD:?set EVF_BI_DB_PASSWORD}"

evf db migrate

dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
node -e '
  const { env } = process
  const roles = { evf_etl: env.EVF_ETL_DB_PASSWORD, evf_api: env.EVF_API_DB_PASSWORD, evf_bi: env.EVF_BI_DB_PASSWORD }
  require("node:fs").writeFileSync(process.argv[1], JSON.stringify(roles), { mode: 0o600 })
' "$dir/db-roles.json"
evf db roles --data-dir "$dir" > /dev/null
echo "migrate: migrations applied; evf_etl, evf_api and evf_bi can log in"
