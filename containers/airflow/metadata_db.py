"""Creates Airflow's metadata database, named in AIRFLOW__DATABASE__SQL_ALCHEMY_CONN, when it is
missing: the PostgreSQL image creates only POSTGRES_DB, and Airflow creates tables, not databases."""

import os
from urllib.parse import unquote, urlsplit

import psycopg2
from psycopg2 import sql

url = urlsplit(os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
name = url.path.lstrip("/")
conn = psycopg2.connect(
    host=url.hostname,
    port=url.port or 5432,
    user=unquote(url.username or ""),
    password=unquote(url.password or ""),
    dbname="postgres",
    connect_timeout=10,
)
conn.autocommit = True
with conn.cursor() as cur:
    cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
    if cur.fetchone() is None:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"created the metadata database {name}")
conn.close()
