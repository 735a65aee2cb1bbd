"""``imagematch catalog …``: catalog change events (webhooks)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from imagematch.cli.terminal import JsonFlag, err, fail, load_settings
from imagematch.config import redact_url
from imagematch.errors import ImageMatchError

__all__ = ["app"]

app = typer.Typer(help="Catalog change events (webhooks).", no_args_is_help=True)


@app.command("send-event")
def catalog_send_event(
    event_file: Annotated[
        Path, typer.Argument(help="JSON file holding one catalog event.", exists=True, dir_okay=False)
    ],
    url: Annotated[str, typer.Option(help="The webhook's URL.")] = "http://127.0.0.1:8000/webhooks/catalog",
    as_json: JsonFlag = False,
) -> None:
    """Sign a catalog event with IMAGEMATCH_CATALOG_WEBHOOK_SECRET and POST it, as a shop would."""
    import time

    from imagematch.sources.catalog import parse_catalog_event, sign_catalog_event

    settings = load_settings()
    body = event_file.read_bytes()
    try:
        parse_catalog_event(body)  # refuse locally what the server would refuse
    except ImageMatchError as exc:
        raise fail(f"{event_file}: {exc}") from exc
    headers = {"Content-Type": "application/json"}
    if settings.catalog_webhook_secret is not None:
        secret = settings.catalog_webhook_secret.get_secret_value()
        headers = sign_catalog_event(secret, int(time.time()), body)
    else:
        err.print("[yellow]IMAGEMATCH_CATALOG_WEBHOOK_SECRET is not set: sending it unsigned[/yellow]")
    status, answer = _post(url, body, headers, timeout=settings.fetch_timeout_seconds)
    err.print(f"HTTP {status}: job {answer.get('id')} is {answer.get('status')}")
    if as_json:
        print(json.dumps(answer))


def _post(url: str, body: bytes, headers: dict[str, str], *, timeout: float) -> tuple[int, dict[str, Any]]:
    """POST ``body``; returns the status and the JSON answer. Raises the CLI's exit on an error."""
    import httpx

    try:
        response = httpx.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {redact_url(url)}: {exc}") from exc
    try:
        answer: Any = response.json()
    except ValueError:
        answer = response.text[:500]
    if not isinstance(answer, dict):
        answer = {"detail": answer}
    if response.is_error:
        raise fail(f"HTTP {response.status_code}: {answer.get('detail', answer)}")
    return response.status_code, answer
