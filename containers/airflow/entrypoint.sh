#!/bin/bash
# Entrypoint of the evf Airflow image. Every Airflow component checks the shared token secret and
# writes the UI password from .env; `init` creates the metadata database when it is missing and
# migrates it. Then the base image's /entrypoint runs `airflow <command>`.
set -euo pipefail
if [ -z "${AIRFLOW__API_AUTH__JWT_SECRET:-}" ]; then
  echo "AIRFLOW_JWT_SECRET is empty: set it in .env (the Airflow components sign task tokens with it)" >&2
  exit 2
fi
if [ -n "${AIRFLOW_ADMIN_PASSWORD:-}" ] && [ -n "${AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE:-}" ]; then
  (umask 077 && python3 -c 'import json, os, sys; print(json.dumps({"admin": os.environ["AIRFLOW_ADMIN_PASSWORD"]}))' \
    > "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
fi
if [ "${1:-}" = init ]; then
  python3 /opt/evf/containers/airflow/metadata_db.py
  exec /entrypoint db migrate
fi
exec /entrypoint "$@"
