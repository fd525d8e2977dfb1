"""The ledger as an HTTP service (FastAPI): ``ledger serve``. See docs/api.md."""

from ledger.api.app import create_app

__all__ = ["create_app"]
