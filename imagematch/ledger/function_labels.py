"""Labels of the Postgres and Supabase ledgers: the ``imagematch_*_label(s)`` SQL functions of
migration ``20261207000000_labels`` (a mixin of :class:`~imagematch.ledger.functions.FunctionLedger`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from imagematch.labels import Label, NewLabel, Verdict

__all__ = ["FunctionLabels"]


class FunctionLabels:
    def _value(self, fn: str, args: dict[str, Any]) -> Any:
        raise NotImplementedError  # FunctionLedger's

    def _call(self, fn: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        raise NotImplementedError  # FunctionLedger's

    def put_label(self, label: NewLabel) -> tuple[Label, bool]:
        result = self._value("imagematch_put_label", {"p_label": label.model_dump(mode="json")})
        return Label.model_validate(result["label"]), bool(result["created"])

    def retract_label(self, job_id: int, *, by: str) -> Label | None:
        ended = self._value("imagematch_retract_label", {"p_job_id": job_id, "p_by": by})
        return Label.model_validate(ended) if ended else None

    def current_label(self, job_id: int) -> Label | None:
        rows = self.list_labels(job_id=job_id, limit=1)
        return rows[0] if rows else None

    def list_labels(
        self,
        *,
        since: datetime | None = None,
        verdict: Verdict | None = None,
        job_id: int | None = None,
        product_id: str | None = None,
        image_sha256: str | None = None,
        current_only: bool = True,
        after_id: int | None = None,
        limit: int = 1000,
    ) -> list[Label]:
        args = {
            "p_since": since,
            "p_verdict": verdict.value if verdict else None,
            "p_job_id": job_id,
            "p_product_id": product_id,
            "p_image_sha256": image_sha256,
            "p_current_only": current_only,
            "p_after_id": after_id,
            "p_limit": limit,
        }
        return [Label.model_validate(row) for row in self._call("imagematch_list_labels", args)]
