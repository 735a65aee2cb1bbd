"""Postgres migrations are applied in name order, each once, including to a database that was
migrated before a newer migration existed."""

from __future__ import annotations

import psycopg
import pytest

from imagematch.ledger import open_ledger
from imagematch.ledger.postgres import migration_files

pytestmark = pytest.mark.postgres


def test_a_later_migration_is_applied_to_an_older_schema(postgres_url: str) -> None:
    names = [name for name, _ in migration_files()]
    assert len(names) >= 2 and names == sorted(names)
    first_name, first_sql = migration_files()[0]
    with psycopg.connect(postgres_url, autocommit=True) as conn:  # a deployment of the first release
        conn.execute(first_sql.encode())
        conn.execute(
            "create table imagematch_migrations (name text primary key, applied_at timestamptz "
            "not null default now())"
        )
        conn.execute("insert into imagematch_migrations (name) values (%s)", (first_name,))

    open_ledger(postgres_url).close()
    open_ledger(postgres_url).close()  # idempotent

    with psycopg.connect(postgres_url) as conn:
        applied = [r[0] for r in conn.execute("select name from imagematch_migrations order by name")]
        tables = {
            r[0] for r in conn.execute("select tablename from pg_tables where schemaname = current_schema()")
        }
        overloads = conn.execute(
            "select count(*) from pg_proc where proname = 'imagematch_count_by_status'"
        ).fetchone()
    assert applied == names
    assert {"catalog_products", "catalog_product_images", "image_jobs"} <= tables
    assert overloads == (1,)


def test_functions_have_a_fixed_search_path_and_anon_cannot_execute_them(postgres_url: str) -> None:
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        for role in ("anon", "authenticated"):  # Supabase's API roles
            if not conn.execute("select 1 from pg_roles where rolname = %s", (role,)).fetchone():
                conn.execute(f"create role {role} nologin")
    open_ledger(postgres_url).close()
    with psycopg.connect(postgres_url) as conn:
        functions = conn.execute(
            "select p.oid::regprocedure::text, p.proconfig from pg_proc p "
            "where p.pronamespace = current_schema()::regnamespace and p.proname like 'imagematch%'"
        ).fetchall()
        callable_by = {
            role: conn.execute(
                "select count(*) from pg_proc p where p.pronamespace = current_schema()::regnamespace "
                "and p.proname like 'imagematch%%' and has_function_privilege(%s, p.oid, 'execute')",
                (role,),
            ).fetchone()
            for role in ("anon", "authenticated")
        }
        rls = conn.execute(
            "select relrowsecurity from pg_class where relname = 'imagematch_migrations'"
        ).fetchone()
    assert functions and all(any("search_path=" in c for c in (config or [])) for _, config in functions)
    assert callable_by == {"anon": (0,), "authenticated": (0,)}
    assert rls == (True,)
