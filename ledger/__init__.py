"""Provenance Ledger: an append-only, hash-chained, Merkle-proved log of signed attestations.

The public surface is small: :class:`Ledger` (open, append, prove), the pure modules
:mod:`ledger.merkle`, :mod:`ledger.note`, :mod:`ledger.checkpoint`, :mod:`ledger.record`, and the
error tree in :mod:`ledger.errors`. ``Ledger`` is imported lazily: a verifier that only needs the
pure modules never loads SQLAlchemy.
"""

from typing import TYPE_CHECKING, Any

from ledger.errors import Error

if TYPE_CHECKING:
    from ledger.log import Ledger

__all__ = ["Error", "Ledger"]


def __getattr__(name: str) -> Any:
    if name == "Ledger":
        from ledger.log import Ledger

        return Ledger
    raise AttributeError(f"module 'ledger' has no attribute {name!r}")
