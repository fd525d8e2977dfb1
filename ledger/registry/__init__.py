"""The trust registry: who may sign what, when — itself kept in the ledger.

Signers are public keys (Ed25519, ECDSA P-256/P-384, RSA; PEM or securesystemslib JSON) and
Sigstore identities (issuer + subject, exact or full-match regex, with the trusted root carried in
the entry), each with a name, a validity window, optional allowed predicate types, and
revocation. Every change is a ledger entry signed with the ledger's admin key, so the state at any
index is a pure function of the log before it (:mod:`ledger.registry.model`).

The library calls (what ``ledger signers`` and the admin API routes use):

- :func:`make_spec` — build and validate a :class:`~ledger.registry.model.SignerSpec`;
- :func:`add_signer` ``(ledger, spec, admin_key)`` → the append's proof;
- :func:`revoke_signer` ``(ledger, name, at, admin_key)`` → the append's proof;
- :func:`list_signers` ``(ledger)`` → JSON-ready dicts, one per signer ever added.

Admin keys: :mod:`ledger.registry.admin`. Modules load lazily (the storage layer imports
:mod:`ledger.registry.entries` for its derived-rows hook).
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledger.registry.service import add_signer, list_signers, make_spec, revoke_signer

__all__ = ["add_signer", "list_signers", "make_spec", "revoke_signer"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(import_module("ledger.registry.service"), name)
    raise AttributeError(f"module 'ledger.registry' has no attribute {name!r}")
