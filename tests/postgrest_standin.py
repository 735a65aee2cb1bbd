"""A local stand-in for Supabase's PostgREST, over a real Postgres, for the routes our adapter uses.

It does what PostgREST does for them: ``POST /rest/v1/rpc/<fn>`` calls the SQL function with named
arguments cast to their declared types (a set-returning function answers a JSON array, any other a
JSON scalar); ``GET /rest/v1/<table>`` runs ``select <columns>`` with ``col=eq.v``/``lt``/``gt``/
``lte``/``gte``/``neq``/``is`` filters, ``order=col.desc,col2.asc``, ``limit`` and ``offset``.
Real HTTP on 127.0.0.1; nothing is mocked below it.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import uvicorn
from psycopg import sql
from psycopg_pool import ConnectionPool
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TABLES = {
    "image_jobs",
    "image_prediction_log",
    "catalog_products",
    "catalog_product_images",
    "entities",
    "entity_photos",
    "matches",
    "image_job_attempts",
}
OPERATORS = {"eq": "=", "lt": "<", "gt": ">", "lte": "<=", "gte": ">=", "neq": "<>"}


def _json_response(conn: psycopg.Connection[Any], query: sql.Composable, params: Any) -> Response:
    value = conn.execute(query, params).fetchone()[0]  # type: ignore[index]
    return Response(json.dumps(value), media_type="application/json")


def make_app(pool: ConnectionPool[Any]) -> Starlette:
    signatures: dict[str, tuple[bool, list[str], list[str]]] = {}  # PostgREST caches its schema too

    def signature(conn: psycopg.Connection[Any], fn: str) -> tuple[bool, list[str], list[str]] | None:
        if fn not in signatures:
            row = conn.execute(
                "select p.proretset, coalesce(p.proargnames[1:p.pronargs], '{}'), "
                "array(select format_type(t, null) from unnest(p.proargtypes) t) "
                "from pg_proc p where p.proname = %s",
                (fn,),
            ).fetchone()
            if row is None:
                return None
            signatures[fn] = (row[0], list(row[1]), list(row[2]))
        return signatures[fn]

    def rpc_sync(fn: str, args: dict[str, Any]) -> Response:
        with pool.connection() as conn:
            found = signature(conn, fn)
            if found is None:
                return JSONResponse({"message": f"function {fn} not found"}, status_code=404)
            returns_set, names, types = found
            named = [
                sql.SQL("{} => {}::{}").format(sql.Identifier(n), sql.Placeholder(n), sql.SQL(t))
                for n, t in zip(names or [], types, strict=True)
            ]
            params = {
                n: None
                if args.get(n) is None
                else json.dumps(args[n])
                if t in ("jsonb", "json")
                else str(args[n])
                for n, t in zip(names or [], types, strict=True)
            }
            call = sql.SQL("{}({})").format(sql.Identifier(fn), sql.SQL(", ").join(named))
            if returns_set:
                query = sql.SQL("select coalesce(json_agg(r), '[]'::json) from {} r").format(call)
            else:
                query = sql.SQL("select to_json({})").format(call)
            return _json_response(conn, query, params)

    async def rpc(request: Request) -> Response:
        return await run_in_threadpool(rpc_sync, request.path_params["fn"], await request.json())

    async def select(request: Request) -> Response:
        return await run_in_threadpool(select_sync, request.path_params["table"], request.query_params)

    def select_sync(table: str, query_params: QueryParams) -> Response:
        if table not in TABLES:
            return JSONResponse({"message": f"unknown table {table}"}, status_code=404)
        where, params, order, limit = [], [], sql.SQL(""), sql.SQL("")
        columns: sql.Composable = sql.SQL("*")
        for key, value in query_params.multi_items():
            if key == "select":
                if value != "*":
                    columns = sql.SQL(", ").join(sql.Identifier(c) for c in value.split(","))
            elif key == "order":
                terms = []
                for term in value.split(","):
                    column, _, direction = term.partition(".")
                    desc = direction.startswith("desc")
                    terms.append(
                        sql.SQL("{} {}").format(sql.Identifier(column), sql.SQL("desc" if desc else "asc"))
                    )
                order = sql.SQL(" order by ") + sql.SQL(", ").join(terms)
            elif key == "limit":
                limit += sql.SQL(" limit {}").format(sql.Literal(int(value)))
            elif key == "offset":
                limit += sql.SQL(" offset {}").format(sql.Literal(int(value)))
            else:
                op, _, operand = value.partition(".")
                if op == "is" and operand == "null":
                    where.append(sql.SQL("{} is null").format(sql.Identifier(key)))
                else:
                    where.append(
                        sql.SQL("{}::text {} %s").format(sql.Identifier(key), sql.SQL(OPERATORS[op]))
                    )
                    params.append(operand)
        condition = sql.SQL(" where ") + sql.SQL(" and ").join(where) if where else sql.SQL("")
        inner = sql.SQL("select {} from {}{}{}{}").format(
            columns, sql.Identifier(table), condition, order, limit
        )
        query = sql.SQL("select coalesce(json_agg(r), '[]'::json) from ({}) r").format(inner)
        with pool.connection() as conn:
            return _json_response(conn, query, params)

    return Starlette(
        routes=[
            Route("/rest/v1/rpc/{fn}", rpc, methods=["POST"]),
            Route("/rest/v1/{table}", select, methods=["GET"]),
        ]
    )


@contextmanager
def serve_postgrest(database_url: str) -> Iterator[str]:
    """Run the stand-in on a free 127.0.0.1 port; yields its base URL (a Supabase project URL)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    pool: ConnectionPool[Any] = ConnectionPool(
        database_url, max_size=8, kwargs={"autocommit": True}, open=True
    )
    server = uvicorn.Server(uvicorn.Config(make_app(pool), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        threading.Event().wait(0.02)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        pool.close()
