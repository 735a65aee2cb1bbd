"""Modal deployment wiring (thin: everything real lives in ``imagematch/``).

Placeholder until the Modal deployment issue lands: the app object exists so
``modal deploy modal_app.py`` has something to name, and importing this file never needs a token.
"""

from __future__ import annotations

import modal

app = modal.App("imagematch")
