"""The Supabase ledger (supabase-py over PostgREST). Tables are read through PostgREST; every state
transition is an RPC to the SQL functions in ``supabase/migrations``, the same ones the Postgres
backend calls, so semantics are identical. Use the service-role key: the tables have RLS enabled
with no policies, so no other role can touch them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
from postgrest.exceptions import APIError
from supabase import Client, create_client

from imagematch.errors import TransientError
from imagematch.ledger.base import Clock, utcnow
from imagematch.ledger.functions import FunctionLedger

__all__ = ["SupabaseLedger"]


class SupabaseLedger(FunctionLedger):
    def __init__(
        self, url: str, service_key: str, *, clock: Clock = utcnow, client: Client | None = None
    ) -> None:
        super().__init__(clock=clock)
        self._client = client or create_client(url, service_key)

    def _call(self, fn: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        params = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in args.items()}
        try:
            data = self._client.rpc(fn, params).execute().data
        except (httpx.HTTPError, APIError) as exc:
            raise TransientError(f"Supabase RPC {fn} failed: {exc}") from exc
        # PostgREST answers a set-returning function with an array, any other with its value.
        return data if isinstance(data, list) else [{fn: data}]

    def _select(
        self, table: str, *, where: dict[str, Any], limit: int | None = None, before_id: int | None = None
    ) -> list[dict[str, Any]]:
        query = self._client.table(table).select("*")
        for column, value in where.items():
            if value is not None:
                query = query.eq(column, value)
        if before_id is not None:
            query = query.lt("id", before_id)
        if limit is not None:
            query = query.order("id", desc=True).limit(limit)
        try:
            rows = query.execute().data
        except (httpx.HTTPError, APIError) as exc:
            raise TransientError(f"Supabase read of {table} failed: {exc}") from exc
        return [row for row in rows if isinstance(row, dict)]

    def migrate(self) -> None:
        """Supabase schemas are applied with the Supabase CLI (`supabase db push`), not from here."""

    def close(self) -> None:
        pass
