"""The operator console: HTML pages under ``/ui`` over the same services as the API."""

from imagematch.console.router import console_router

__all__ = ["console_router"]
