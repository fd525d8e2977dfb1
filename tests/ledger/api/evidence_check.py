"""An independent check of evidence documents: the pure Merkle functions and the checkpoint
verifier, nothing from the server's read path."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from ledger import merkle
from ledger.checkpoint import Checkpoint, open_checkpoint
from ledger.note import NoteVerifier

d = base64.b64decode


def verify_evidence(
    doc: dict[str, Any], verifier: NoteVerifier, origin: str, trusted: Checkpoint | None = None
) -> tuple[Checkpoint, list[dict[str, Any]]]:
    """The checkpoint and the statements (decoded payloads) of every entry, once every proof has
    been checked; ``AssertionError`` / ``ProofError`` otherwise."""
    assert doc["mediaType"] == "application/vnd.provenance-ledger.evidence.v1+json"
    cp = open_checkpoint(doc["checkpoint"], [verifier], origin).checkpoint
    assert doc["treeSize"] == cp.size
    statements = []
    for e in doc["entries"]:
        leaf, body = d(e["leaf"]), d(e["body"])
        record = json.loads(leaf)
        assert record["index"] == e["index"] and record["log"] == origin
        assert record["body"] == "sha256:" + hashlib.sha256(body).hexdigest()
        proof = [d(h) for h in e["inclusionProof"]]
        merkle.verify_inclusion(merkle.hash_leaf(leaf), e["index"], cp.size, proof, cp.root_hash)
        doc_body = json.loads(body)
        env = doc_body.get("dsseEnvelope", doc_body)
        statements.append(json.loads(d(env["payload"])))
    if trusted is not None:
        c = doc["consistency"]
        assert c["fromSize"] == trusted.size
        merkle.verify_consistency(
            trusted.size, cp.size, [d(h) for h in c["proof"]], trusted.root_hash, cp.root_hash
        )
    return cp, statements
