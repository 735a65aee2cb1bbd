"""``imagematch zendesk app package`` writes a zip that follows Zendesk's app rules.

The rules are those of Zendesk's documentation (Manifest reference, "Making API requests from a
Zendesk app" for secure settings, "Create app brand assets" for the logos), as its validator
(zendesk_apps_support: validations/manifest.rb, translations.rb, secure_settings.rb) applies them.
They are written out here, independently of the packager, so that a change to either shows.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from imagematch.sources.zendesk.app_package import package_app

PARAMETER_TYPES = {"text", "password", "checkbox", "url", "number", "multiline", "hidden", "oauth"}
SUPPORT_LOCATIONS = {
    "top_bar",
    "nav_bar",
    "ticket_sidebar",
    "new_ticket_sidebar",
    "user_sidebar",
    "organization_sidebar",
    "background",
    "ticket_editor",
    "modal",
}
SERVED_FRAMEWORKS = {"2.0"}
VALID_LOCALE = re.compile(r"^[a-z]{2}(-\w{2,3})?$")
SECRET_NAME = re.compile("token|key|pwd|password", re.IGNORECASE)


def zendesk_app_errors(data: bytes) -> list[str]:
    """Every rule of Zendesk's documentation the zip breaks (empty: valid)."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    names = set(archive.namelist())
    if "manifest.json" not in names:
        return ["manifest.json is not at the root of the zip"]
    manifest = json.loads(archive.read("manifest.json"))
    errors = _manifest_errors(manifest, names)
    errors += _location_errors(manifest, names)
    errors += _parameter_errors(manifest)
    errors += _translation_errors(manifest, archive)
    errors += _logo_errors(archive, names)
    return errors


def _manifest_errors(manifest: dict[str, Any], names: set[str]) -> list[str]:
    errors = []
    author = manifest.get("author")
    if not isinstance(author, dict) or not all(
        isinstance(author.get(k), str) for k in ("name", "email", "url")
    ):
        errors.append("author needs name, email and url")
    elif not re.match(r"^https?://", author["url"]):
        errors.append("author url must be http(s)")
    if manifest.get("frameworkVersion") not in SERVED_FRAMEWORKS:
        errors.append(f"frameworkVersion must be one of {SERVED_FRAMEWORKS}")
    locale = manifest.get("defaultLocale")
    if not isinstance(locale, str) or not VALID_LOCALE.match(locale):
        errors.append("defaultLocale is required and must be a locale")
    elif f"translations/{locale}.json" not in names:
        errors.append(f"translations/{locale}.json is missing")
    for flag in ("private", "singleInstall", "signedUrls", "requirementsOnly", "marketingOnly"):
        if flag in manifest and not isinstance(manifest[flag], bool):
            errors.append(f"{flag} must be a boolean")
    for text in ("version", "frameworkVersion", "defaultLocale"):
        if text in manifest and not isinstance(manifest[text], str):
            errors.append(f"{text} must be a string")
    whitelist = manifest.get("domainWhitelist", [])
    if not isinstance(whitelist, list) or not all(isinstance(d, str) for d in whitelist):
        errors.append("domainWhitelist must be an array of strings")
    return errors


def _location_errors(manifest: dict[str, Any], names: set[str]) -> list[str]:
    location = manifest.get("location")
    if not isinstance(location, dict) or not location:
        return ["location is required"]
    errors = [f"unknown host {host}" for host in location if host != "support"]
    for name, options in location.get("support", {}).items():
        if name not in SUPPORT_LOCATIONS:
            errors.append(f"unknown Support location {name}")
        url = options if isinstance(options, str) else options.get("url")
        if not url:
            errors.append(f"{name} has no url")
        elif not (url.startswith("https://") or (url.startswith("assets/") and url in names)):
            errors.append(f"{name} url {url} is neither https nor a file in assets/")
        if isinstance(options, dict) and not isinstance(options.get("flexible", False), bool):
            errors.append(f"{name}.flexible must be a boolean")
    return errors


def _parameter_errors(manifest: dict[str, Any]) -> list[str]:
    parameters = manifest.get("parameters", [])
    if not isinstance(parameters, list):
        return ["parameters must be an array"]
    errors = []
    seen = [p.get("name") for p in parameters]
    errors += [f"duplicate parameter {n}" for n in set(seen) if seen.count(n) > 1]
    for p in parameters:
        name, kind = p.get("name"), p.get("type", "text")
        if name == "name":
            errors.append("a parameter may not be called 'name'")
        if kind not in PARAMETER_TYPES:
            errors.append(f"parameter {name}: unknown type {kind}")
        for flag in ("required", "secure"):
            if not isinstance(p.get(flag, False), bool):
                errors.append(f"parameter {name}: {flag} must be a boolean")
        if kind == "hidden" and p.get("required"):
            errors.append(f"parameter {name}: a hidden parameter cannot be required")
        if p.get("secure") and ("default" in p or kind == "oauth"):
            errors.append(f"parameter {name}: a secure parameter has no default and is not oauth")
        if SECRET_NAME.search(name or "") and kind in ("text", "password") and not p.get("secure"):
            errors.append(f"parameter {name} looks secret but is not secure")
    return errors


def _translation_errors(manifest: dict[str, Any], archive: zipfile.ZipFile) -> list[str]:
    errors = []
    for name in archive.namelist():
        match = re.match(r"^translations/(.*)\.json$", name)
        if not match:
            continue
        if not VALID_LOCALE.match(match[1]):
            errors.append(f"{name}: not a locale")
        content = json.loads(archive.read(name))
        app = content.get("app") if isinstance(content, dict) else None
        if not isinstance(app, dict) or "name" not in app:
            errors.append(f"{name}: app.name is required")
            continue
        labels = app.get("parameters", {})
        for parameter in manifest.get("parameters", []):
            if (
                not isinstance(labels.get(parameter["name"]), dict)
                or "label" not in labels[parameter["name"]]
            ):
                errors.append(f"{name}: parameter {parameter['name']} has no label")
        if not manifest.get("private", True):
            missing = {"short_description", "long_description", "installation_instructions"} - set(app)
            errors += [f"{name}: app.{key} is required for a public app" for key in sorted(missing)]
    return errors


def _logo_errors(archive: zipfile.ZipFile, names: set[str]) -> list[str]:
    errors = []
    for name, size, alpha in (("assets/logo.png", 320, False), ("assets/logo-small.png", 128, True)):
        if name not in names:
            errors.append(f"{name} is missing")
            continue
        image = Image.open(io.BytesIO(archive.read(name)))
        if image.format != "PNG" or image.size != (size, size):
            errors.append(f"{name} must be a {size}x{size} PNG")
        if alpha and image.mode != "RGBA":
            errors.append(f"{name} must be PNG-24 with transparency")
    return errors


@pytest.fixture
def app_zip(tmp_path: Path) -> zipfile.ZipFile:
    package = package_app(tmp_path / "app.zip", api_url="https://imagematch.example.com/")
    return zipfile.ZipFile(package.path)


def test_the_cli_writes_a_valid_zip_with_no_arguments(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "IMAGEMATCH_DATA_DIR": str(tmp_path / "data")}
    result = subprocess.run(
        [sys.executable, "-m", "imagematch.cli", "zendesk", "app", "package"],
        cwd=tmp_path,
        env={**env, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "imagematch-zendesk-app.zip").read_bytes()
    assert zendesk_app_errors(data) == []
    assert "domainWhitelist is empty" in result.stderr  # said, not hidden


def test_the_zip_follows_zendesk_rules(app_zip: zipfile.ZipFile) -> None:
    assert zendesk_app_errors(Path(str(app_zip.filename)).read_bytes()) == []
    manifest = json.loads(app_zip.read("manifest.json"))
    assert manifest["location"] == {
        "support": {"ticket_sidebar": {"url": "assets/iframe.html", "flexible": True}}
    }
    assert manifest["frameworkVersion"] == "2.0"
    assert manifest["domainWhitelist"] == ["imagematch.example.com"]
    parameters = {p["name"]: p for p in manifest["parameters"]}
    assert parameters["api_url"] == {
        "name": "api_url",
        "type": "url",
        "required": True,
        "default": "https://imagematch.example.com",
    }
    assert parameters["api_token"]["secure"] is True and "default" not in parameters["api_token"]


def test_the_validator_catches_what_zendesk_rejects(tmp_path: Path, app_zip: zipfile.ZipFile) -> None:
    manifest = json.loads(app_zip.read("manifest.json"))
    manifest.pop("author")
    manifest["parameters"][1]["secure"] = False
    manifest["location"]["support"]["ticket_sidebar"]["url"] = "assets/missing.html"
    broken = io.BytesIO()
    with zipfile.ZipFile(broken, "w") as out:
        out.writestr("manifest.json", json.dumps(manifest))
        for name in app_zip.namelist():
            if name not in ("manifest.json", "assets/logo-small.png"):
                out.writestr(name, app_zip.read(name))
    errors = zendesk_app_errors(broken.getvalue())
    assert "author needs name, email and url" in errors
    assert "parameter api_token looks secret but is not secure" in errors
    assert "ticket_sidebar url assets/missing.html is neither https nor a file in assets/" in errors
    assert "assets/logo-small.png is missing" in errors


def test_assets_load_nothing_from_elsewhere_and_send_the_token_placeholder_only(
    app_zip: zipfile.ZipFile,
) -> None:
    html = app_zip.read("assets/iframe.html").decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(not re.match(r"^(https?:)?//", s) for s in sources)
    assert all(f"assets/{s}" in app_zip.namelist() for s in sources)
    assert "ZAFClient" in app_zip.read("assets/zaf_sdk.js").decode()
    assert "Apache License" in app_zip.read("assets/zaf_sdk.LICENSE.txt").decode()
    script = app_zip.read("assets/sidebar.js").decode()
    assert "Bearer {{setting.api_token}}" in script and "secure: true" in script
    # Every call goes through client.request: no other way out of the iframe.
    assert not re.search(r"\bfetch\(|XMLHttpRequest|\.innerHTML\s*=", script)


def test_a_plain_http_url_is_refused(tmp_path: Path) -> None:
    from imagematch.errors import ImageMatchError

    with pytest.raises(ImageMatchError, match="https"):
        package_app(tmp_path / "app.zip", api_url="http://imagematch.example.com")
    localhost = package_app(tmp_path / "local.zip", api_url="http://127.0.0.1:8000")
    assert localhost.domain_whitelist == ["127.0.0.1"]
