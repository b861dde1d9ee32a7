"""The reference stack's API, minimal and as a competent deployment would write it: FastAPI on
uvicorn (one worker), asyncpg with a connection pool, the reference endpoint only.

GET /sensor-data?limit=100 -> [{"id", "station", "data": {...}, "created_at"}], newest first.

DATABASE_URL (postgres://user:password@host:port/db) comes from the environment. Run by
`npm run bench:api` as `uvicorn app:app --workers 1 --port P --no-access-log`.
"""

import json
import os
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Query

QUERY = "SELECT id, station, data, created_at FROM sensor_data ORDER BY id DESC LIMIT $1"


async def _init(conn: asyncpg.Connection) -> None:
    # jsonb arrives as text by default; decode it so `data` is an object, as in the reference.
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Same pool size as our API (10 connections).
    app.state.pool = await asyncpg.create_pool(
        os.environ["DATABASE_URL"], min_size=10, max_size=10, init=_init
    )
    yield
    await app.state.pool.close()


app = FastAPI(lifespan=lifespan)


@app.get("/sensor-data")
async def sensor_data(limit: int = Query(100, ge=1, le=1000)) -> list[dict]:
    async with app.state.pool.acquire() as conn:
        rows = await conn.fetch(QUERY, limit)
    return [dict(r) for r in rows]


@app.get("/health")
async def health() -> dict:
    return {"status": "ok"}
