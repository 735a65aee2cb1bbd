"""``imagematch db …``: the ledger database."""

from __future__ import annotations

import typer

from imagematch.cli.terminal import err, load_settings
from imagematch.ledger import open_ledger_for

__all__ = ["app"]

app = typer.Typer(help="The ledger database.", no_args_is_help=True)


@app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the ledger schema (SQLite, or Postgres from supabase/migrations)."""
    settings = load_settings()
    ledger = open_ledger_for(settings)
    ledger.migrate()
    ledger.close()
    where = (
        "Supabase: apply supabase/migrations with `supabase db push`"
        if settings.supabase_url
        else "up to date"
    )
    err.print(f"ledger schema: {where}")
