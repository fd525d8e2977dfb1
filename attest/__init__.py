"""attest: in-toto attestations — the format library and the CI-side command.

The public surface: DSSE envelopes (:mod:`attest.dsse`), Statements and resource descriptors
(:mod:`attest.statement`), typed predicates (:mod:`attest.predicates`), keys and key-file signers
(:mod:`attest.keys`, :mod:`attest.signers`), Sigstore bundle verification
(:mod:`attest.sigstore_bundle`), the verify-then-parse helper shared with ``ledger`` and
``verify`` (:func:`open_statement`), and the error tree (:mod:`attest.errors`). Names are loaded
on first use, so importing the package costs nothing beyond what is used.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

from attest.errors import Error

if TYPE_CHECKING:
    from attest.dsse import Envelope, sign_envelope, verify_envelope
    from attest.keys import PublicKey, load_public_key
    from attest.signers import KeySigner, load_signer
    from attest.sigstore_bundle import IdentityPolicy, verify_bundle
    from attest.statement import ResourceDescriptor, Statement, parse_statement
    from attest.verification import VerifiedStatement, open_statement

__all__ = [
    "Envelope",
    "Error",
    "IdentityPolicy",
    "KeySigner",
    "PublicKey",
    "ResourceDescriptor",
    "Statement",
    "VerifiedStatement",
    "load_public_key",
    "load_signer",
    "open_statement",
    "parse_statement",
    "sign_envelope",
    "verify_bundle",
    "verify_envelope",
]

_HOME = {
    "Envelope": "attest.dsse",
    "sign_envelope": "attest.dsse",
    "verify_envelope": "attest.dsse",
    "PublicKey": "attest.keys",
    "load_public_key": "attest.keys",
    "KeySigner": "attest.signers",
    "load_signer": "attest.signers",
    "IdentityPolicy": "attest.sigstore_bundle",
    "verify_bundle": "attest.sigstore_bundle",
    "ResourceDescriptor": "attest.statement",
    "Statement": "attest.statement",
    "parse_statement": "attest.statement",
    "VerifiedStatement": "attest.verification",
    "open_statement": "attest.verification",
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'attest' has no attribute {name!r}")
    return getattr(import_module(home), name)
