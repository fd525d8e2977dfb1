"""Provenance Ledger: an append-only, hash-chained, Merkle-proved log of signed attestations.

The public surface is small: :class:`Ledger` (open, append, prove), the pure modules
:mod:`ledger.merkle`, :mod:`ledger.note`, :mod:`ledger.checkpoint`, :mod:`ledger.record`, and the
error tree in :mod:`ledger.errors`.
"""

from ledger.errors import Error
from ledger.log import Ledger

__all__ = ["Error", "Ledger"]
