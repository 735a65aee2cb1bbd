"""What every command shares: the two consoles, the progress bar, ``--json``, errors, settings.

Progress and messages go to stderr (``err``); results to stdout (``out``), and with ``--json`` the
last stdout line is one JSON object.
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from imagematch.config import Settings

__all__ = ["JsonFlag", "configure_logging", "err", "fail", "load_settings", "out", "progress_bar"]

out = Console()
err = Console(stderr=True, soft_wrap=True)
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")]


def load_settings() -> Settings:
    return Settings()


def progress_bar() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=False,
    )


def fail(message: str) -> typer.Exit:
    """Print ``message`` as an error; returns the exit (code 1) for the caller to raise."""
    err.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def configure_logging(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Logs as ``IMAGEMATCH_LOG_FORMAT`` says (text on a terminal, JSON otherwise), error reports
    when ``SENTRY_DSN`` is set (:func:`imagematch.error_reporting.observe_process`)."""
    from pydantic import ValidationError

    from imagematch.error_reporting import observe_process

    try:
        settings = load_settings()
    except ValidationError:  # the command itself reports bad settings; log as text until then
        settings = Settings.model_construct()
    observe_process(settings, verbose=verbose)
