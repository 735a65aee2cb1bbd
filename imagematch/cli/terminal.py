"""What every command shares: the two consoles, the progress bar, ``--json``, errors, settings.

Progress and messages go to stderr (``err``); results to stdout (``out``), and with ``--json`` the
last stdout line is one JSON object.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
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
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False)],
    )
