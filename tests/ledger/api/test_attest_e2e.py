"""`attest … --ledger URL` end to end against a real server: the `make run` pipeline (including
`attest run`), every receipt proved, then `ledger check` on what the server stored."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ledger import merkle
from ledger._internal.demo import seed
from ledger.checkpoint import open_checkpoint
from ledger.note import parse_verifier
from tests.ledger.api.server import ORIGIN, Server, add_signer, ledger_cli


def test_the_demo_pipeline_lands_through_http(
    server: Server, tokens: dict[str, str], tmp_path: Path
) -> None:
    import subprocess

    from tests.ledger.api.server import BIN

    subprocess.run(
        [str(BIN / "attest"), "keygen", "--type", "ed25519", "-o", str(tmp_path / "ci-key")],
        check=True,
        capture_output=True,
    )
    add_signer(server.db, server.key, "ci", key=(tmp_path / "ci-key.pub").read_bytes())
    receipts = seed(tmp_path, server.url, tokens["append"])
    assert len(receipts) == 6 and not any(r["duplicate"] for r in receipts)
    vkey = ledger_cli(tmp_path, "checkpoint", "--db", server.db)
    assert vkey.startswith(ORIGIN)
    from ledger.storage import LedgerStore

    store = LedgerStore.open(server.db)
    verifier = parse_verifier(store.meta()["vkey"])
    store.close()
    for r in receipts:
        cp = open_checkpoint(str(r["checkpoint"]), [verifier], ORIGIN).checkpoint
        proof = [base64.b64decode(p) for p in r["inclusionProof"]]  # type: ignore[attr-defined]
        merkle.verify_inclusion(
            base64.b64decode(str(r["leafHash"])),
            int(r["index"]),  # type: ignore[call-overload]
            cp.size,
            proof,
            cp.root_hash,
        )
    # What the server stored is what attest wrote, byte for byte.
    link = (tmp_path / "attestations" / "1-build.link.json").read_bytes().rstrip(b"\n")
    entry = server.get(f"/api/v1/entries/{receipts[0]['index']}").json()
    assert base64.b64decode(entry["body"]).rstrip(b"\n") == link
    report = json.loads(ledger_cli(tmp_path, "check", "--db", server.db))
    assert report["ok"] is True and report["records"] >= 6
