"""Runtime configuration, read once from the environment (prefix ``IMAGEMATCH_``).

Build a :class:`Settings` in the entry point (CLI, API server, Modal container) and pass it to
:func:`imagematch.app.build_services`; nothing else in the library reads the environment.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from imagematch.models import CatalogViews, ProductScoring, Whitening

__all__ = ["DEFAULT_MODEL", "Settings", "redact_url"]

DEFAULT_MODEL = "efficientnet:lite0"
_URL_SECRETS = frozenset({"database_url", "catalog", "matches_webhook_url", "zendesk_base_url"})
_PASSWORD_PARAM = re.compile(
    r"(?i)((?:password|passwd|pwd|key|token|secret|sig|signature|code|auth|credential)=)[^&\s#]*"
)
_TABLE_NAME = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$"  # [schema.]name, nothing to quote


def redact_url(url: str) -> str:
    """``url`` fit for a message or log: the password of its user info replaced by *** (a user
    name alone, which may be a token, too) and secret-looking query values by ***. The one
    redaction every error message and ``repr`` uses."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
    except ValueError:  # not even a URL (bad brackets): hide whatever sits before an @
        return _PASSWORD_PARAM.sub(r"\1***", re.sub(r"[^/@]*@", "***@", url))
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        shown = f"{user}:***" if has_password else "***"
        url = urlunsplit(parts._replace(netloc=f"{shown}@{host}"))
    return _PASSWORD_PARAM.sub(r"\1***", url)


class Settings(BaseSettings):
    """Every knob of imagematch. Field names map to ``IMAGEMATCH_<NAME>`` variables."""

    # populate_by_name: a field with an alias (a deprecated spelling) is still set by its name.
    model_config = SettingsConfigDict(env_prefix="IMAGEMATCH_", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(
        Path("./data"), description="Index snapshots, SQLite ledger, uploaded images, caches."
    )
    database_url: str | None = Field(
        None,
        description="Ledger location: sqlite:///path, postgresql://… or memory:// (tests). "
        "Default: the SQLite file imagematch.sqlite3 in the data dir.",
    )
    model: str = Field(
        DEFAULT_MODEL,
        description="Embedder spec: efficientnet:<lite0|lite1|lite2>[@<px>][/<multilayer|mean>], "
        "open_clip:<arch>/<pretrained>, tiny (tests only), or several joined by + (fused).",
    )
    model_cache_dir: Path | None = Field(
        None, description="Where OpenCLIP weights are cached (a Modal Volume in production)."
    )
    device: str = Field("cpu", description="Torch device for the embedder: cpu, cuda, cuda:0…")
    batch_size: int = Field(16, ge=1, description="Images per embedding batch.")
    batch: int | None = Field(
        None,
        ge=1,
        description="Jobs a worker claims and embeds together in one forward pass "
        "(default 16 on a GPU, 4 on CPU).",
    )
    top_k: int = Field(5, ge=1, le=100, description="Products returned per match.")
    min_score: float = Field(
        0.25,
        description="Best score below this marks the answer 'no confident match' "
        "(precision/coverage per threshold: BENCHMARKS.md).",
    )
    catalog_views: CatalogViews = Field(
        CatalogViews.MULTI,
        description="Catalog images embedded as one view (single), 14 averaged crops/mirrors (multi), "
        "or those plus 6 shoot-like copies: re-lit, colour-cast, blurred, warped, re-compressed (shoot).",
    )
    whitening: Whitening = Field(
        Whitening.PRODUCT,
        description="Projection fitted on the catalog: product (within-product), image (label-free) or none.",
    )
    whitening_shrinkage: float = Field(
        0.3, gt=0, le=1, description="Whitening shrinkage towards the mean eigenvalue (stability)."
    )
    product_scoring: ProductScoring = Field(
        ProductScoring.CENTROID, description="Rank products by their centroid or by their best image (max)."
    )

    max_image_bytes: int = Field(20_000_000, ge=1, description="Largest accepted image file.")
    max_image_pixels: int = Field(
        60_000_000, ge=1, description="Largest accepted decoded image (width × height)."
    )
    max_catalog_bytes: int = Field(
        50_000_000, ge=1, description="Largest catalog document (JSON/CSV) read by URL or path."
    )
    max_decode_bytes: int = Field(
        256_000_000, ge=1, description="Most memory one image may take to decode (else refused)."
    )
    decode_concurrency: int = Field(4, ge=1, description="Images decoded at once in one process.")
    fetch_timeout_seconds: float = Field(
        20.0, gt=0, description="Connect/read timeout of each download request."
    )
    fetch_total_seconds: float = Field(
        30.0, gt=0, description="Longest a whole download may take, redirects included (then: retry)."
    )
    fetch_allow_private: str = Field(
        "",
        description="Private destinations downloads may reach: a comma list of host names and "
        "networks (localhost,10.0.0.0/8), or true for all of them (local trials, tests).",
    )
    fetch_extra_ports: list[int] = Field(
        default_factory=list, description="Ports besides 80/443 public downloads may use (JSON list)."
    )

    workers: int = Field(2, ge=0, description="In-process job workers started by `serve`.")
    lease_seconds: float = Field(120.0, gt=0, description="How long a claimed job stays locked.")
    max_attempts: int = Field(5, ge=1, description="Attempts before a job fails for good.")
    retry_base_seconds: float = Field(10.0, gt=0, description="First retry delay (doubles).")
    retry_max_seconds: float = Field(3600.0, gt=0, description="Longest retry delay.")
    pending_grace_seconds: float = Field(
        60.0, ge=0, description="A pending job older than this is re-dispatched by the sweep."
    )
    poll_seconds: float = Field(1.0, gt=0, description="Idle worker poll interval.")
    catalog: str | None = Field(
        None,
        # IMAGEMATCH_CATALOG_SOURCE: the name until this release, still read (deprecated).
        validation_alias=AliasChoices("IMAGEMATCH_CATALOG", "IMAGEMATCH_CATALOG_SOURCE"),
        description="Catalog the scheduled rebuild reads (Modal reindex): JSON/CSV path or URL, "
        "postgresql://… (catalog tables) or supabase: (the Supabase project below).",
    )
    catalog_table: str = Field(
        "catalog_products",
        pattern=_TABLE_NAME,
        description="Products table or view of a database catalog: id, name, category, description, "
        "metadata, deleted_at.",
    )
    catalog_images_table: str = Field(
        "catalog_product_images",
        pattern=_TABLE_NAME,
        description="Images table or view of a database catalog: product_id, url, position.",
    )
    catalog_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret that signs catalog webhooks (POST /webhooks/catalog)."
    )
    catalog_allow_unsigned: bool = Field(
        False, description="Accept unsigned catalog webhooks when no secret is set (local trials only)."
    )
    catalog_webhook_tolerance_seconds: float = Field(
        300.0, gt=0, description="Largest age (or clock skew) of a catalog webhook's timestamp."
    )
    supabase_url: str | None = Field(
        None, description="Supabase project URL: use Supabase (PostgREST + RPC) as the ledger."
    )
    supabase_service_key: SecretStr | None = Field(
        None, description="Supabase service-role key (server side only; never the anon key)."
    )
    sweep_seconds: float = Field(30.0, gt=0, description="How often `serve`/`worker` run the sweep.")
    matches_webhook_url: str | None = Field(
        None, description="POSTed (signed) when an entity's top match changes; needs the secret below."
    )
    matches_webhook_secret: SecretStr | None = Field(
        None, description="Shared secret that signs the matches webhook (scheme of the catalog webhook)."
    )

    # Zendesk (see README "Zendesk"): webhooks in, attachments matched, internal notes out.
    zendesk_subdomain: str | None = Field(
        None, description="Zendesk account: API at https://<subdomain>.zendesk.com."
    )
    zendesk_base_url: str | None = Field(
        None, description="Zendesk API base URL instead of the subdomain (tests, proxies)."
    )
    zendesk_email: str | None = Field(
        None, description="Agent email for API-token auth (with IMAGEMATCH_ZENDESK_API_TOKEN)."
    )
    zendesk_api_token: SecretStr | None = Field(None, description="Zendesk API token (email/token auth).")
    zendesk_oauth_token: SecretStr | None = Field(
        None, description="Zendesk OAuth access token (Bearer); used instead of email/token if set."
    )
    zendesk_webhook_secret: SecretStr | None = Field(
        None, description="Signing secret of the Zendesk webhook; unsigned requests are refused."
    )
    zendesk_allow_unsigned: bool = Field(
        False, description="Accept unsigned Zendesk webhooks when no secret is set (local trials only)."
    )
    zendesk_signature_tolerance_seconds: float = Field(
        300.0, gt=0, description="Replay window: webhook signature timestamps older/newer are refused."
    )
    zendesk_post_notes: bool = Field(
        False, description="Post each attachment's top products as an internal note on the ticket."
    )
    zendesk_note_min_score: float | None = Field(
        None,
        description="Best score below this: the note says 'no confident match'. "
        "Default: IMAGEMATCH_MIN_SCORE.",
    )

    # Operator console and access control (README "Console").
    api_token: SecretStr | None = Field(
        None,
        description="Token(s) every /v1 route and /ui page requires: `token`, or `name:token,name2:token2` "
        "(several valid at once, for rotation). Unset: only loopback clients are served.",
    )
    session_hours: float = Field(
        12.0, gt=0, description="A console sign-in lasts this long (checked on the server; logout ends it)."
    )
    learned_per_product: int = Field(
        50,
        ge=0,
        description="Learned references kept per product (the most recent confirmed or corrected "
        'photos; 0: labels teach nothing). README "Learning loop".',
    )
    thumbnail_retention_days: float = Field(
        90.0,
        gt=0,
        description="Query-photo thumbnails older than this are purged (`thumbnails purge`); stored "
        "photo vectors too (by the served index rebuild).",
    )
    upload_retention_days: float = Field(
        30.0,
        gt=0,
        description="Uploaded originals (blobs/) older than this are purged once no job still to run "
        "needs them (learned references are kept).",
    )
    public_url: str | None = Field(
        None, description="Where the console is reachable (https://…); Zendesk notes link to jobs there."
    )
    product_url_template: str | None = Field(
        None,
        description="Product page URL for notes when a product has no `url` metadata, e.g. "
        "https://shop.example/p/{id}.",
    )

    # Operations (README "Operations"): logs, error reports, metrics.
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="Log lines as text or JSON; auto: text on a terminal, JSON otherwise."
    )
    log_level: str | None = Field(
        None, description="Root log level (DEBUG, INFO, WARNING…). Default: INFO for JSON, WARNING for text."
    )
    metrics_via_ledger_seconds: float = Field(
        0.0,
        ge=0,
        description="Publish each process's metrics to the ledger this often and serve /metrics from "
        "their sum (Modal: 30). 0: each process serves its own.",
    )
    sentry_dsn: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("SENTRY_DSN", "IMAGEMATCH_SENTRY_DSN"),
        description="Report unhandled errors and permanently failed jobs to Sentry (needs sentry-sdk).",
    )

    @field_validator("fetch_allow_private", mode="before")
    @classmethod
    def _allowance_text(cls, value: object) -> object:
        # Backwards compatible: the setting used to be a bool (true = every private address).
        return ("true" if value else "") if isinstance(value, bool) else value

    def __repr_args__(self) -> Iterable[tuple[str | None, Any]]:
        # Connection strings carry passwords: repr/str/logs show them redacted.
        for name, value in super().__repr_args__():
            yield name, redact_url(value) if name in _URL_SECRETS and isinstance(value, str) else value

    def jobs_per_batch(self) -> int:
        """``batch``, or its default for ``device``: a GPU's forward pass costs little more for
        16 photos than for one; on a CPU a larger batch only delays each job's answer."""
        return self.batch or (16 if self.device.startswith("cuda") else 4)

    def resolved_database_url(self) -> str:
        """The ledger URL, defaulting to a SQLite file inside the data dir."""
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'imagematch.sqlite3').resolve()}"
