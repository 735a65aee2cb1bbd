"""The floor for webhook acks: a bare FastAPI app that does the least an honest ack must do.

It reads the body, checks one HMAC (Zendesk's scheme), makes one durable insert and answers 202
(200 for a delivery it already has). ``bench/webhook_burst.py`` runs it beside ``imagematch serve``
so our ack path is always measured as a ratio to this floor, in the same run.

Usage: ``BENCH_WEBHOOK_SECRET=… python bench/webhook_floor.py --port N --db sqlite:///path | postgresql://…``
SQLite: WAL, ``synchronous=FULL``, one connection per worker thread, autocommit insert.
Postgres: a psycopg pool of 8, one autocommit insert (fsync at commit, the server default).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import os
import sqlite3
import threading
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"
TABLE = "CREATE TABLE IF NOT EXISTS deliveries (id INTEGER PRIMARY KEY, key TEXT NOT NULL UNIQUE, body TEXT)"
PG_TABLE = (
    "create table if not exists deliveries (id bigserial primary key, key text not null unique, body text)"
)


def sqlite_insert(path: str) -> Callable[[str, str], bool]:
    local = threading.local()
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(TABLE)

    def insert(key: str, body: str) -> bool:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = sqlite3.connect(path, timeout=30, isolation_level=None)
            conn.execute("PRAGMA synchronous = FULL")
        cursor = conn.execute(
            "INSERT INTO deliveries (key, body) VALUES (?, ?) ON CONFLICT (key) DO NOTHING", (key, body)
        )
        return cursor.rowcount == 1

    return insert


def postgres_insert(url: str) -> Callable[[str, str], bool]:
    from psycopg_pool import ConnectionPool

    pool = ConnectionPool(url, min_size=8, max_size=8, open=True)
    with pool.connection() as conn:
        conn.execute(PG_TABLE)

    def insert(key: str, body: str) -> bool:
        with pool.connection() as conn:
            cursor = conn.execute(
                "insert into deliveries (key, body) values (%s, %s) on conflict (key) do nothing", (key, body)
            )
            return cursor.rowcount == 1

    return insert


def create_floor_app(db: str, secret: str) -> FastAPI:
    insert = (
        sqlite_insert(db.removeprefix("sqlite:///")) if db.startswith("sqlite:///") else postgres_insert(db)
    )
    app = FastAPI()

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/webhooks/zendesk")
    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        timestamp = request.headers.get(TIMESTAMP_HEADER, "")
        digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
        if not hmac.compare_digest(
            base64.b64encode(digest), request.headers.get(SIGNATURE_HEADER, "").encode()
        ):
            raise HTTPException(401, "bad signature")
        key = hashlib.sha256(body).hexdigest()
        created = await run_in_threadpool(insert, key, body.decode())
        return JSONResponse({"duplicate": not created}, status_code=202 if created else 200)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db", required=True)
    args = parser.parse_args()
    secret = os.environ["BENCH_WEBHOOK_SECRET"]
    uvicorn.run(create_floor_app(args.db, secret), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
