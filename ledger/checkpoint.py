"""C2SP tlog-checkpoints (https://c2sp.org/tlog-checkpoint): the signed head of a log.

The body is ``<origin>\\n<decimal size>\\n<base64 root hash>\\n`` followed by optional extension
lines. :func:`open_checkpoint` opens the signed note first, then parses the body, then checks the
origin the caller expects: a checkpoint you hold from it is signed, well formed and for your log.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Sequence

from attest._internal.frozen import Frozen, set_field
from ledger import merkle
from ledger.errors import CheckpointError, ProofError
from ledger.note import NoteSigner, NoteVerifier, Signature, open_note, sign_note

__all__ = [
    "Checkpoint",
    "SignedCheckpoint",
    "check_prefix",
    "note_from_rfc6962_sth",
    "open_checkpoint",
    "parse_checkpoint",
    "sign_checkpoint",
]

_SIZE = re.compile(r"(0|[1-9][0-9]*)")
_MAX_SIZE = (1 << 64) - 1


class Checkpoint(Frozen):
    """A parsed checkpoint body."""

    _fields = ("origin", "size", "root_hash", "extensions")
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...]

    def __init__(
        self, origin: str, size: int, root_hash: bytes, extensions: tuple[str, ...] = ()
    ) -> None:
        set_field(self, "origin", origin)
        set_field(self, "size", size)
        set_field(self, "root_hash", root_hash)
        set_field(self, "extensions", extensions)

    def body(self) -> str:
        lines = [
            self.origin,
            str(self.size),
            base64.b64encode(self.root_hash).decode(),
            *self.extensions,
        ]
        return "".join(line + "\n" for line in lines)


class SignedCheckpoint(Frozen):
    """A checkpoint whose note was verified, with the exact note text kept for re-serving."""

    _fields = ("checkpoint", "note", "signatures")
    checkpoint: Checkpoint
    note: str
    signatures: tuple[Signature, ...]

    def __init__(
        self, checkpoint: Checkpoint, note: str, signatures: tuple[Signature, ...]
    ) -> None:
        set_field(self, "checkpoint", checkpoint)
        set_field(self, "note", note)
        set_field(self, "signatures", signatures)


def check_prefix(old: Checkpoint, new: Checkpoint, proof: Sequence[bytes]) -> None:
    """``old`` is a prefix of ``new`` (same history), by the RFC 9162 consistency ``proof`` from
    ``old.size`` to ``new.size``; :class:`~ledger.errors.ProofError` otherwise. One size with two
    roots is a fork (a split view); every tree extends the empty one. Shared by ``verify``'s
    step 3 and :mod:`ledger.client`, whichever of the two checkpoints is the trusted one."""
    if old.size > new.size:
        raise ProofError(f"a tree of size {new.size} cannot extend one of size {old.size}")
    if old.size == new.size:
        if old.root_hash != new.root_hash:
            raise ProofError(
                f"two checkpoints of size {new.size} with different roots: a fork (split view)"
            )
        return
    if old.size == 0:
        return
    merkle.verify_consistency(old.size, new.size, list(proof), old.root_hash, new.root_hash)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse a checkpoint body (the text of the signed note). Raises :class:`CheckpointError`."""
    lines = body.split("\n", 3)
    if len(lines) < 4:
        raise CheckpointError("invalid checkpoint: fewer than three newline-terminated lines")
    origin, size_text, root_text, rest = lines
    if not origin:
        raise CheckpointError("invalid checkpoint: empty origin")
    if not _SIZE.fullmatch(size_text) or int(size_text) > _MAX_SIZE:
        raise CheckpointError(f"invalid checkpoint: size {size_text!r} is not a decimal uint64")
    try:
        root = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CheckpointError("invalid checkpoint: root hash is not base64") from e
    extensions = tuple(rest.split("\n")[:-1]) if rest else ()
    if rest and not rest.endswith("\n"):
        raise CheckpointError("invalid checkpoint: extension lines must end in a newline")
    return Checkpoint(origin, int(size_text), root, extensions)


def open_checkpoint(
    note: str | bytes, verifiers: list[NoteVerifier], origin: str, *, hash_size: int | None = 32
) -> SignedCheckpoint:
    """Verify the note's signatures, then parse the body and check its origin (and hash size)."""
    opened = open_note(note, verifiers)
    cp = parse_checkpoint(opened.text)
    if cp.origin != origin:
        raise CheckpointError(f"checkpoint origin {cp.origin!r} is not the expected {origin!r}")
    if hash_size is not None and len(cp.root_hash) != hash_size:
        raise CheckpointError(f"checkpoint root hash is not {hash_size} bytes")
    text = note.decode() if isinstance(note, bytes) else note
    return SignedCheckpoint(cp, text, opened.signatures)


def sign_checkpoint(cp: Checkpoint, signer: NoteSigner) -> str:
    """Sign a checkpoint as a note; the signer's name must be the checkpoint's origin."""
    if signer.name != cp.origin:
        raise CheckpointError(f"key {signer.name!r} cannot sign checkpoints of {cp.origin!r}")
    return sign_note(cp.body(), signer)


def note_from_rfc6962_sth(sth_json: str | bytes, origin: str, key_hash: int) -> str:
    """Re-express a CT ``get-sth`` JSON response as a checkpoint note (alg 0x05 signature)."""
    try:
        sth = json.loads(sth_json)
        size = int(sth["tree_size"])
        timestamp = int(sth["timestamp"])
        root = base64.b64decode(sth["sha256_root_hash"], validate=True)
        tls_sig = base64.b64decode(sth["tree_head_signature"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error) as e:
        raise CheckpointError("malformed RFC 6962 signed tree head") from e
    body = Checkpoint(origin, size, root).body()
    blob = key_hash.to_bytes(4, "big") + timestamp.to_bytes(8, "big") + tls_sig
    return body + "\n" + f"\u2014 {origin} {base64.b64encode(blob).decode()}\n"
