"""The Postgres ledger (psycopg 3). State transitions are the SQL functions of the migrations in
``ledger/sql/migrations`` (also ``supabase/migrations``), shared with the Supabase backend; the
plain reads and the migration bookkeeping are the named queries of ``ledger/sql/postgres.sql``.
Claims use ``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from importlib.resources import files
from typing import Any, cast

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, utcnow
from imagematch.ledger.functions import FunctionLedger
from imagematch.ledger.group_commit import GroupCommit, Pending
from imagematch.ledger.sql import load_queries

__all__ = ["PostgresLedger", "migration_files"]

_log = logging.getLogger(__name__)
Q = load_queries("postgres")
_MIGRATION_LOCK = 7_411_204  # pg_advisory_xact_lock key: one migrator at a time
# Short, hot writes share transactions (group commit): a webhook burst's submits, as one
# imagematch_submit_many statement per batch. Longer ones (claims, sweeps, archiving) keep a pool
# connection each, so none waits behind another's batch.
_GROUPED = "imagematch_submit"


@functools.lru_cache(maxsize=256)
def _call_query(fn: str, names: tuple[str, ...]) -> str:
    """``call_function`` with named arguments (``name => %(name)s``, each name quoted as an
    identifier), composed once per function and argument names (composing it per call was a
    measurable share of a webhook's CPU time)."""
    arrow = sql.SQL(" => ")
    named = sql.SQL(", ").join(
        sql.Composed([sql.Identifier(name), arrow, sql.Placeholder(name)]) for name in names
    )
    return sql.SQL(Q["call_function"]).format(function=sql.Identifier(fn), arguments=named).as_string()


# FunctionLedger's reads: (table, columns filtered on, paged?) -> query name in postgres.sql.
_READS = {
    ("image_jobs", ("id",), False): "job_by_id",
    ("image_jobs", ("idempotency_key", "kind"), False): "job_by_key",
    ("image_jobs", (), True): "list_jobs",
    ("image_jobs", ("status",), True): "list_jobs_by_status",
    ("image_jobs", ("source",), True): "list_jobs_by_source",
    ("image_jobs", ("source", "status"), True): "list_jobs_by_source_and_status",
    ("image_prediction_log", ("job_id",), False): "prediction_by_job",
    ("image_prediction_log", (), True): "list_predictions",
    ("image_prediction_log", ("ticket_id",), True): "list_predictions_by_ticket",
    ("entities", ("entity_id", "entity_type"), False): "entity_by_ref",
    ("entity_photos", ("entity_id", "entity_type"), False): "entity_photos",
    ("entity_photos", (), False): "all_entity_photos",
    ("matches", ("entity_id", "entity_type"), False): "entity_matches",
    ("matches", ("product_id",), False): "matches_of_product",
    ("image_job_attempts", ("job_id",), False): "attempts_by_job",
}
_FIRST_PAGE = 2**63 - 1  # before_id of the first page: above every id


def migration_files() -> list[tuple[str, str]]:
    """``(name, sql)`` of every migration, in order."""
    folder = files("imagematch.ledger.sql").joinpath("migrations")
    found = [(f.name, f.read_text(encoding="utf-8")) for f in folder.iterdir() if f.name.endswith(".sql")]
    return sorted(found)


_Conn = psycopg.Connection[dict[str, Any]]


def _params(args: dict[str, Any]) -> dict[str, Any]:
    return {k: Jsonb(v) if isinstance(v, dict | list) else v for k, v in args.items()}


@dataclass(frozen=True)
class _Submit:
    """One ``imagematch_submit`` call: run alone (called with a connection), or together with the
    other submits of its batch as one ``imagematch_submit_many`` statement (:meth:`item`)."""

    args: dict[str, Any]

    def __call__(self, conn: _Conn) -> list[dict[str, Any]]:
        return conn.execute(_call_query(_GROUPED, tuple(self.args)), _params(self.args)).fetchall()

    def item(self) -> dict[str, Any]:
        """This submit as an element of ``imagematch_submit_many``'s ``p_items``: the arguments
        without their ``p_`` (``kind``, ``source``, ``key``, ``payload``, ``metadata``, ``now``)."""
        return {
            name.removeprefix("p_"): value.isoformat() if isinstance(value, datetime) else value
            for name, value in self.args.items()
        }


def _submit_together(conn: _Conn, submits: list[Pending[_Conn]]) -> bool:
    """Run ``submits`` as one ``imagematch_submit_many`` statement (in a savepoint) and set each
    one's result as ``imagematch_submit`` would give it; ``False`` (nothing kept) when the batch
    fails for any reason but the connection's, e.g. one item breaking a constraint."""
    items = [cast(_Submit, pending.write).item() for pending in submits]
    query = _call_query("imagematch_submit_many", ("p_items",))
    try:
        with conn.transaction():
            row = conn.execute(query, {"p_items": Jsonb(items)}).fetchone()
            results = row["imagematch_submit_many"] if row else None
            if not isinstance(results, list) or len(results) != len(items):
                raise psycopg.DataError(f"imagematch_submit_many answered {results!r:.200}")
    except psycopg.OperationalError:
        raise  # the connection is in doubt: the caller fails the whole batch
    except Exception as exc:  # e.g. one item breaks a constraint: the caller goes one by one
        _log.warning("%d submits failed together (%s); submitting them one by one", len(items), exc)
        return False
    for pending, result in zip(submits, results, strict=True):
        pending.result = [{"imagematch_submit": result}]
    return True


class _PostgresWriter(GroupCommit[_Conn]):
    """Submits of this process in shared transactions, one pool connection per batch: a burst of
    webhooks costs one commit per batch instead of one connection and commit per request, and one
    statement (``imagematch_submit_many``) for all its submits instead of one round trip each."""

    def __init__(self, pool: ConnectionPool[_Conn]) -> None:
        super().__init__()
        self._pool = pool

    def commit(self, batch: list[Pending[_Conn]]) -> None:
        try:
            with self._pool.connection() as conn, conn.transaction():
                submits = [item for item in batch if isinstance(item.write, _Submit)]
                alone = batch
                if len(submits) > 1 and _submit_together(conn, submits):
                    alone = [item for item in batch if not isinstance(item.write, _Submit)]
                for item in alone:
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
    def __init__(
        self, url: str, *, clock: Clock = utcnow, max_connections: int = 8, pool_timeout_s: float = 5.0
    ) -> None:
        """``pool_timeout_s``: how long a call waits for a connection before it fails as a
        TransientError (a webhook then answers 503 in time for its sender to retry)."""
        super().__init__(clock=clock)
        self._pool: ConnectionPool[psycopg.Connection[dict[str, Any]]] = ConnectionPool(
            url,
            connection_class=psycopg.Connection[dict[str, Any]],
            min_size=1,
            max_size=max_connections,
            kwargs={"row_factory": dict_row},
            timeout=pool_timeout_s,
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
        if fn == _GROUPED:
            return self._writer.run(_Submit(args))
        with self._conn() as conn:
            return conn.execute(_call_query(fn, tuple(args)), _params(args)).fetchall()

    def _select(
        self, table: str, *, where: dict[str, Any], limit: int | None = None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        filters = {column: value for column, value in where.items() if value is not None}
        read = (table, tuple(sorted(filters)), limit is not None)
        if read not in _READS:
            raise NotImplementedError(f"no query in ledger/sql/postgres.sql reads {read}")
        params = {**filters, "limit": limit, "before_id": _FIRST_PAGE if before_id is None else before_id}
        with self._conn() as conn:
            return conn.execute(Q[_READS[read]], params).fetchall()

    def migrate(self) -> None:
        with self._conn() as conn:
            conn.execute(Q["lock_migrations"], {"key": _MIGRATION_LOCK})
            conn.execute(Q["migrations_table"])
            done = {r["name"] for r in conn.execute(Q["applied_migrations"])}
            for name, migration in migration_files():
                if name not in done:
                    conn.execute(migration.encode())
                    conn.execute(Q["record_migration"], {"name": name})

    def close(self) -> None:
        self._pool.close()
