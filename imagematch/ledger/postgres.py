"""The Postgres ledger (psycopg 3). State transitions are the SQL functions of the migrations in
``ledger/sql/migrations`` (also ``supabase/migrations``), shared with the Supabase backend; only
plain reads are written here. Claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, utcnow
from imagematch.ledger.functions import FunctionLedger
from imagematch.ledger.group_commit import GroupCommit, Pending

__all__ = ["PostgresLedger", "migration_files"]

_MIGRATION_LOCK = 7_411_204  # pg_advisory_xact_lock key: one migrator at a time
# Short, hot writes share transactions (group commit): a webhook burst's submits. Longer ones
# (claims, sweeps, archiving) keep a pool connection each, so none waits behind another's batch.
_GROUPED = frozenset({"imagematch_submit"})


@functools.lru_cache(maxsize=256)
def _call_query(fn: str, names: tuple[str, ...]) -> str:
    """``select * from fn(name => %(name)s, …)``, composed once per function and argument names
    (composing it per call was a measurable share of a webhook's CPU time)."""
    named = sql.SQL(", ").join(
        sql.SQL("{} => {}").format(sql.Identifier(name), sql.Placeholder(name)) for name in names
    )
    return sql.SQL("select * from {}({})").format(sql.Identifier(fn), named).as_string()


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration, in order."""
    folder = files("imagematch.ledger.sql").joinpath("migrations")
    found = [(f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


class _PostgresWriter(GroupCommit["psycopg.Connection[dict[str, Any]]"]):
    """Submits of this process in shared transactions, one pool connection per batch: a burst of
    webhooks costs one commit per batch instead of one connection and commit per request."""

    def __init__(self, pool: ConnectionPool[psycopg.Connection[dict[str, Any]]]) -> None:
        super().__init__()
        self._pool = pool

    def commit(self, batch: list[Pending[psycopg.Connection[dict[str, Any]]]]) -> None:
        try:
            with self._pool.connection() as conn, conn.transaction():
                for item in batch:
                    try:
                        with conn.transaction():  # a savepoint: a failing write undoes only itself
                            item.result = item.write(conn)
                    except psycopg.OperationalError:
                        raise  # the connection is in doubt: fail the whole batch
                    except Exception as exc:
                        item.error = exc
        except psycopg.OperationalError as exc:
            for item in batch:
                item.result, item.error = None, TransientError(f"ledger database unavailable: {exc}")


class PostgresLedger(FunctionLedger):
    def __init__(self, url: str, *, clock: Clock = utcnow, max_connections: int = 8) -> None:
        super().__init__(clock=clock)
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            connection_class=psycopg.Connection[dict[str, Any]],
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": dict_row},
            open=True,
        )
        self._writer = _PostgresWriter(self._pool)

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            with self._pool.connection() as conn:
                yield conn  # commits on success, rolls back on error
        except psycopg.OperationalError as exc:
            raise TransientError(f"ledger database unavailable: {exc}") from exc

    def _call(self, fn: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        query = _call_query(fn, tuple(args))
        params = {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in args.items()}
        if fn in _GROUPED:
            return self._writer.run(lambda conn: conn.execute(query, params).fetchall())
        with self._conn() as conn:
            return conn.execute(query, params).fetchall()

    def _select(
        self, table: str, *, where: dict[str, Any], limit: int | None = None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        filters = {k: v for k, v in where.items() if v is not None}
        conditions = [sql.SQL("{} = {}").format(sql.Identifier(k), sql.Placeholder(k)) for k in filters]
        if before_id is not None:
            conditions.append(sql.SQL("id < {}").format(sql.Placeholder("before_id")))
            filters["before_id"] = before_id
        query = sql.SQL("select * from {}").format(sql.Identifier(table))
        if conditions:
            query += sql.SQL(" where ") + sql.SQL(" and ").join(conditions)
        if limit is not None:
            query += sql.SQL(" order by id desc limit {}").format(sql.Literal(limit))
        with self._conn() as conn:
            return conn.execute(query, filters).fetchall()

    def migrate(self) -> None:
        with self._conn() as conn:
            conn.execute("select pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(
                "create table if not exists imagematch_migrations "
                "(name text primary key, applied_at timestamptz not null default now())"
            )
            done = {r["name"] for r in conn.execute("select name from imagematch_migrations")}
            for name, migration in migration_files():
                if name not in done:
                    conn.execute(migration.encode())
                    conn.execute("insert into imagematch_migrations (name) values (%s)", (name,))

    def close(self) -> None:
        self._pool.close()
