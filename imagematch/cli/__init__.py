"""Command line: ``imagematch --help``. Progress goes to stderr; with ``--json`` the last stdout line
is one JSON object, so scripts can ``tail -n1``.

One module per command group: :mod:`~imagematch.cli.matching` (match, eval),
:mod:`~imagematch.cli.serving` (serve, worker), :mod:`~imagematch.cli.jobs` (submit, sweep,
requeue, jobs …), :mod:`~imagematch.cli.index`, :mod:`~imagematch.cli.db`,
:mod:`~imagematch.cli.catalog`, :mod:`~imagematch.cli.entities` (rematch) and
:mod:`~imagematch.cli.zendesk`; what they share is in :mod:`~imagematch.cli.terminal`. ``main`` is
the ``imagematch`` console script.
"""

from __future__ import annotations

import os

import typer

from imagematch.cli import catalog, db, entities, index, jobs, matching, serving, thumbnails, zendesk
from imagematch.cli.terminal import configure_logging

__all__ = ["app", "main"]

app = typer.Typer(help="Tell which catalog product is in a photo.", no_args_is_help=True)
app.callback()(configure_logging)
# Registration order is the order `imagematch --help` lists them in.
app.command()(matching.match)
app.command("eval")(matching.eval_)
app.command()(serving.serve)
app.command()(serving.worker)
app.command()(jobs.submit)
app.command()(jobs.sweep)
app.command()(jobs.requeue)
app.command("backfill", hidden=True)(jobs.requeue)  # the old name, for one release
app.command()(entities.rematch)
app.add_typer(index.app, name="index")
app.add_typer(jobs.app, name="jobs")
app.add_typer(db.app, name="db")
app.add_typer(catalog.app, name="catalog")
app.add_typer(zendesk.app, name="zendesk")
app.add_typer(thumbnails.app, name="thumbnails")


def main() -> None:
    from imagematch.runtime import tune_allocator

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    tune_allocator()
    app()
