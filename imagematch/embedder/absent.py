"""A stand-in for processes that must not load the model (on Modal: the web, webhook and CPU job
containers). Anything that would embed fails loudly instead of quietly loading weights on a CPU."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image

from imagematch.embedder.base import Vectors
from imagematch.errors import PermanentError

__all__ = ["ModelNotLoaded"]


class ModelNotLoaded:
    """Satisfies :class:`~imagematch.embedder.Embedder` without a model; ``embed`` raises
    PermanentError (a job kind that needs the model was routed to the wrong process: a bug)."""

    def __init__(self, model: str) -> None:
        self.model = model

    @property
    def embedder_id(self) -> str:
        return f"{self.model} (not loaded in this process)"

    @property
    def dim(self) -> int:
        raise PermanentError(f"the model ({self.model}) is not loaded in this process")

    def embed(self, images: Sequence[Image.Image]) -> Vectors:
        raise PermanentError(
            f"the model ({self.model}) is not loaded in this process: jobs that need it run beside it"
        )
