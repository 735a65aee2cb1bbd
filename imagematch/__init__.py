"""imagematch: tell which catalog product is in a photo.

A plain library: embed (:mod:`imagematch.embedder`), search (:mod:`imagematch.index`), record
(:mod:`imagematch.ledger`), orchestrate (:mod:`imagematch.pipeline`). Adapters at the edges:
HTTP (:mod:`imagematch.api`), CLI (:mod:`imagematch.cli`); Modal wiring lives in ``modal_app.py``.
"""

from imagematch.config import Settings
from imagematch.errors import PermanentError, SubjectGoneError, TransientError
from imagematch.models import Match, MatchResult, Prediction, Product

__all__ = [
    "Match",
    "MatchResult",
    "PermanentError",
    "Prediction",
    "Product",
    "Settings",
    "SubjectGoneError",
    "TransientError",
    "__version__",
]
__version__ = "0.1.0"
