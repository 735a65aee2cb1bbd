"""Settings never show the passwords inside connection strings."""

from __future__ import annotations

from imagematch.config import Settings


def test_repr_hides_passwords_inside_database_url_and_catalog() -> None:
    settings = Settings(
        database_url="postgresql://im:hunter2@db.internal:5432/ledger?sslmode=require",
        catalog="postgres://reader:s3cr3t@catalog/db?password=other-secret",
        zendesk_api_token="tok-123",  # type: ignore[arg-type]
    )
    shown = repr(settings) + str(settings)
    for secret in ("hunter2", "s3cr3t", "other-secret", "tok-123"):
        assert secret not in shown
    assert "postgresql://im:***@db.internal:5432/ledger?sslmode=require" in shown
    assert settings.database_url and "hunter2" in settings.database_url  # the value itself is intact
