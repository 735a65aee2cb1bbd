"""The Zendesk sidebar app as an uploadable zip (Zendesk App Framework v2), built with Python only.

The app's sources live in ``app/`` beside this module: ``manifest.json``, ``translations/en.json``
and ``assets/`` (``iframe.html``, ``sidebar.js``/``.css``, the logos and the vendored ZAF SDK with
its license). Packaging copies them into a zip, filling in what depends on the deployment: the
imagematch host in ``domainWhitelist`` (Zendesk's proxy inserts secure settings only into
requests to listed domains) and the ``api_url`` setting's default.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from imagematch.errors import ImageMatchError

__all__ = ["APP_SOURCES", "AppPackage", "app_manifest", "package_app"]

APP_SOURCES = Path(__file__).parent / "app"
_ZIP_TIME = (2026, 1, 1, 0, 0, 0)  # fixed: the same sources give the same zip


@dataclass(frozen=True)
class AppPackage:
    """What :func:`package_app` wrote."""

    path: Path
    files: list[str]
    domain_whitelist: list[str]
    warnings: list[str] = field(default_factory=list)


def _api_host(api_url: str) -> str:
    parts = urlsplit(api_url)
    local = parts.hostname in ("localhost", "127.0.0.1")
    if not parts.hostname or parts.scheme not in ("https", "http") or (parts.scheme == "http" and not local):
        raise ImageMatchError(
            f"the imagematch URL must be https://host[:port] (http only for localhost): {api_url!r}"
        )
    return parts.hostname


def app_manifest(api_url: str | None = None) -> dict[str, Any]:
    """The app's manifest; with ``api_url``, its host is whitelisted and it is the setting's default.
    Raises ImageMatchError for a URL that is not https (or http on localhost)."""
    manifest: dict[str, Any] = json.loads((APP_SOURCES / "manifest.json").read_text())
    if api_url:
        manifest["domainWhitelist"] = [_api_host(api_url)]
        for parameter in manifest["parameters"]:
            if parameter["name"] == "api_url":
                parameter["default"] = api_url.rstrip("/")
    return manifest


def _source_files() -> list[Path]:
    files = [p for p in sorted(APP_SOURCES.rglob("*")) if p.is_file() and p.name != "manifest.json"]
    return [p for p in files if not p.name.startswith(".")]


def package_app(out: Path, *, api_url: str | None = None) -> AppPackage:
    """Write the app zip to ``out`` (manifest at the zip's root, as Zendesk requires)."""
    manifest = app_manifest(api_url)
    names = ["manifest.json"]
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("manifest.json", _ZIP_TIME), json.dumps(manifest, indent=2) + "\n")
        for path in _source_files():
            name = path.relative_to(APP_SOURCES).as_posix()
            info = zipfile.ZipInfo(name, _ZIP_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes())
            names.append(name)
    warnings = []
    if not manifest["domainWhitelist"]:
        warnings.append(
            "no imagematch URL given (--api-url or IMAGEMATCH_PUBLIC_URL): domainWhitelist is empty, "
            "and Zendesk inserts the secure api_token only into requests to whitelisted domains"
        )
    return AppPackage(out, names, list(manifest["domainWhitelist"]), warnings)
