"""The ``ledger`` command end to end, through the real console script."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ledger import merkle
from ledger.checkpoint import open_checkpoint
from ledger.note import parse_verifier
from tests.conftest import envelope

LEDGER = shutil.which("ledger") or str(
    Path(__file__).resolve().parents[2] / ".venv" / "bin" / "ledger"
)


def run(
    cwd: Path, *args: str, ok: bool = True, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env.update(env_extra or {})
    p = subprocess.run(
        [LEDGER, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if ok:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture
def work(tmp_path: Path, signed_samples: list[bytes], sample_pub_pem: bytes) -> Path:
    for i, body in enumerate(signed_samples[:5]):
        (tmp_path / f"a{i}.json").write_bytes(body)
    (tmp_path / "sample.pub").write_bytes(sample_pub_pem)
    return tmp_path


def init_trusted(work: Path, *db: str) -> str:
    """``ledger init`` and register the samples' key as signer ``ci``; a second database reuses
    the first one's admin key instead (its registry arrives by ``ledger import``). The vkey."""
    reuse = ["--admin-key", "ledger.db.admin.key"] if db else []
    vkey = run(work, "init", "--origin", "cli.example/log", *db, *reuse).stdout.strip()
    if not db:
        run(work, "signers", "add", "--name", "ci", "--key", "sample.pub")
    return vkey


def test_init_append_proof_check_in_one_directory(work: Path) -> None:
    vkey = run(work, "init", "--origin", "cli.example/log").stdout.strip()
    assert (work / "ledger.db.key").stat().st_mode & 0o777 == 0o600
    assert (work / "ledger.db.admin.key").stat().st_mode & 0o777 == 0o600
    added = json.loads(run(work, "signers", "add", "--name", "ci", "--key", "sample.pub").stdout)
    assert added == {"name": "ci", "index": 0}
    verifier = parse_verifier(vkey)
    out = run(work, "append", "a0.json").stdout.splitlines()
    out += run(work, "append", *[f"a{i}.json" for i in range(1, 5)]).stdout.splitlines()
    assert len(out) == 5
    for line in out:
        r = json.loads(line)
        cp = open_checkpoint(r["checkpoint"], [verifier], "cli.example/log").checkpoint
        proof = [base64.b64decode(p) for p in r["inclusionProof"]]
        merkle.verify_inclusion(
            base64.b64decode(r["leafHash"]), r["index"], cp.size, proof, cp.root_hash
        )
    note = run(work, "checkpoint").stdout
    latest = open_checkpoint(note, [verifier], "cli.example/log").checkpoint
    assert latest.size == 6
    p = json.loads(run(work, "proof", "--index", "3").stdout)
    merkle.verify_inclusion(
        base64.b64decode(p["leafHash"]),
        3,
        6,
        [base64.b64decode(h) for h in p["inclusionProof"]],
        latest.root_hash,
    )
    c = json.loads(run(work, "proof", "--consistency", "2", "6").stdout)
    cp1 = open_checkpoint(
        json.loads(out[0])["checkpoint"], [verifier], "cli.example/log"
    ).checkpoint
    assert cp1.size == 2
    merkle.verify_consistency(
        cp1.size, 6, [base64.b64decode(h) for h in c["proof"]], cp1.root_hash, latest.root_hash
    )
    assert json.loads(run(work, "check").stdout)["records"] == 6


def test_errors_are_one_line_and_change_nothing(work: Path) -> None:
    init_trusted(work)
    run(work, "append", "a0.json")
    (work / "bad.json").write_text("{not json")
    p = run(work, "append", "a1.json", "bad.json", ok=False)
    assert p.returncode == 2
    assert p.stderr.count("\n") == 1 and "bad.json" not in p.stdout
    p = run(work, "append", "missing.json", ok=False)
    assert p.returncode == 2 and "missing.json" in p.stderr
    p = run(work, "init", "--origin", "cli.example/log", ok=False)
    assert p.returncode == 2 and "refusing" in p.stderr
    p = run(work, "proof", "--index", "7", ok=False)
    assert p.returncode == 3
    p = run(work, "proof", ok=False)
    assert p.returncode == 2
    assert json.loads(run(work, "check").stdout)["records"] == 2  # the signer and a0


def test_key_file_readable_by_others_is_refused(work: Path) -> None:
    init_trusted(work)
    (work / "ledger.db.key").chmod(0o644)
    p = run(work, "append", "a0.json", ok=False)
    assert p.returncode == 2 and "chmod 600" in p.stderr


def test_check_names_the_tampered_index(work: Path) -> None:
    import sqlite3

    init_trusted(work)
    for i in range(5):
        run(work, "append", f"a{i}.json")
    con = sqlite3.connect(work / "ledger.db")
    con.execute("DROP TRIGGER bodies_no_update")
    digest = con.execute("SELECT body_digest FROM records WHERE idx = 3").fetchone()[0]
    con.execute("UPDATE bodies SET content = ? WHERE digest = ?", (envelope(1), digest))
    con.commit()
    con.close()
    p = run(work, "check", ok=False)
    assert p.returncode == 1
    assert "record 3" in p.stderr and "(index 3)" in p.stderr


def test_check_names_a_last_record_whose_index_is_text(work: Path) -> None:
    """Hostile finding (2026-11-30): the command read the log's size for its progress bar first,
    and a text index there was a TypeError traceback naming nothing; the writer said the same."""
    import sqlite3

    init_trusted(work)
    for i in range(3):
        run(work, "append", f"a{i}.json")
    con = sqlite3.connect(work / "ledger.db")
    con.execute("DROP TRIGGER records_no_update")
    con.execute("UPDATE records SET idx = 'eight' WHERE idx = (SELECT max(idx) FROM records)")
    con.commit()
    con.close()
    p = run(work, "check", ok=False)
    assert p.returncode == 1 and "Traceback" not in p.stderr
    assert "record 3" in p.stderr and "(index 3)" in p.stderr, p.stderr
    p = run(work, "append", "a4.json", ok=False)
    assert "Traceback" not in p.stderr and "not an integer" in p.stderr, p.stderr


def test_export_import_gives_the_same_root(work: Path) -> None:
    vkey = init_trusted(work)
    run(work, "append", *[f"a{i}.json" for i in range(5)])
    assert f"--vkey '{vkey}'" in run(work, "export", "out.jsonl").stderr
    init_trusted(work, "--db", "sqlite:///copy.db")
    imported = json.loads(
        run(work, "import", "out.jsonl", "--vkey", vkey, "--db", "sqlite:///copy.db").stdout
    )
    assert imported["imported"] == 6  # the signer entry and five attestations
    a = run(work, "check").stdout
    b = run(work, "check", "--db", "sqlite:///copy.db").stdout
    assert json.loads(a)["root"] == json.loads(b)["root"]


def test_tampered_export_is_refused_and_nothing_is_written(work: Path) -> None:
    vkey = init_trusted(work)
    run(work, "append", *[f"a{i}.json" for i in range(5)])
    run(work, "export", "out.jsonl")
    original = (work / "out.jsonl").read_text().splitlines()
    lines = list(original)
    rec = json.loads(lines[3])
    rec["body"] = base64.b64encode(envelope(42)).decode()
    lines[3] = json.dumps(rec)
    (work / "bad.jsonl").write_text("\n".join(lines) + "\n")
    init_trusted(work, "--db", "sqlite:///copy.db")
    p = run(work, "import", "bad.jsonl", "--vkey", vkey, "--db", "sqlite:///copy.db", ok=False)
    assert p.returncode == 1 and "record 2" in p.stderr
    assert json.loads(run(work, "check", "--db", "sqlite:///copy.db").stdout)["records"] == 0
    # dropping the last (untouched) record is caught only by the exported checkpoint
    (work / "short.jsonl").write_text("\n".join(original[:-1]) + "\n")
    p = run(work, "import", "short.jsonl", "--vkey", vkey, "--db", "sqlite:///copy.db", ok=False)
    assert p.returncode == 1 and "does not match its checkpoint" in p.stderr
    assert json.loads(run(work, "check", "--db", "sqlite:///copy.db").stdout)["records"] == 0


def test_import_refuses_time_going_backwards(work: Path) -> None:
    """An export whose record times decrease is refused (``ledger check`` would reject the result)."""
    from ledger.record import Record

    vkey = init_trusted(work)
    run(work, "append", "a0.json")
    run(work, "append", "a1.json")
    run(work, "export", "out.jsonl")
    header, signer, r0, r1 = (json.loads(x) for x in (work / "out.jsonl").read_text().splitlines())
    rec0 = Record.from_leaf(base64.b64decode(r0["leaf"]))
    rec1 = Record.from_leaf(base64.b64decode(r1["leaf"]))
    early = Record(
        rec1.log, 2, rec0.leaf_hash.hex(), "2000-01-01T00:00:00.000000Z", rec1.body_type, rec1.body
    )
    r1["leaf"] = base64.b64encode(early.leaf).decode()
    lines = [json.dumps(x) for x in (header, signer, r0, r1)]
    (work / "bad.jsonl").write_text("\n".join(lines) + "\n")
    init_trusted(work, "--db", "sqlite:///copy.db")
    p = run(work, "import", "bad.jsonl", "--vkey", vkey, "--db", "sqlite:///copy.db", ok=False)
    assert p.returncode == 1 and "earlier than the record before" in p.stderr
    assert json.loads(run(work, "check", "--db", "sqlite:///copy.db").stdout)["records"] == 0


def _sql(work: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    import sqlite3

    con = sqlite3.connect(work / "ledger.db")
    for sql, params in statements:
        con.execute(sql, params)
    con.commit()
    con.close()


def test_check_says_when_it_is_unpinned_and_vkey_or_key_file_pins_it(work: Path) -> None:
    vkey = init_trusted(work)
    run(work, "append", "a0.json")
    p = run(work, "check")  # the key file sits at the default path: it pins the check
    assert json.loads(p.stdout)["pinned"] is True and "warning" not in p.stderr
    (work / "ledger.db.key").rename(work / "elsewhere.key")
    p = run(work, "check")
    assert json.loads(p.stdout)["pinned"] is False
    assert p.stderr.count("\n") == 1 and "unpinned" in p.stderr
    for p in (
        run(work, "check", "--vkey", vkey),
        run(work, "check", env_extra={"LEDGER_VKEY": vkey}),
        run(work, "check", "--key-file", "elsewhere.key"),
    ):
        assert json.loads(p.stdout)["pinned"] is True and p.stderr == ""
    p = run(work, "check", "--vkey", "not a key", ok=False)
    assert p.returncode == 2 and p.stderr.count("\n") == 1


def test_check_of_a_rekeyed_rewritten_history_fails_when_pinned(work: Path) -> None:
    import sqlite3

    from ledger.checkpoint import open_checkpoint, sign_checkpoint
    from ledger.note import generate_key

    vkey = init_trusted(work)
    run(work, "append", "a0.json")
    run(work, "append", "a1.json")
    forger = generate_key("cli.example/log")
    con = sqlite3.connect(work / "ledger.db")
    notes = con.execute("SELECT size, note FROM checkpoints").fetchall()
    con.close()
    resign = []
    for size, note in notes:
        cp = open_checkpoint(note, [parse_verifier(vkey)], "cli.example/log").checkpoint
        resign.append(
            ("UPDATE checkpoints SET note = ? WHERE size = ?", (sign_checkpoint(cp, forger), size))
        )
    _sql(
        work,
        ("DROP TRIGGER checkpoints_no_update", ()),
        ("DROP TRIGGER ledger_meta_no_update", ()),
        *resign,
        ("UPDATE ledger_meta SET value = ? WHERE key = 'vkey'", (forger.verifier_key(),)),
    )
    p = run(work, "check", "--vkey", vkey, ok=False)
    assert p.returncode == 1 and "not the one --vkey pins" in p.stderr
    p = run(work, "check", ok=False)  # the real key file at the default path pins it too
    assert p.returncode == 1 and "the key file" in p.stderr
    (work / "ledger.db.key").unlink()
    p = run(work, "check")  # unpinned, the forgery passes: the output must say so
    assert json.loads(p.stdout)["pinned"] is False and "unpinned" in p.stderr


def test_check_with_a_missing_vkey_row_is_one_line(work: Path) -> None:
    run(work, "init", "--origin", "cli.example/log")
    _sql(
        work,
        ("DROP TRIGGER ledger_meta_no_delete", ()),
        ("DELETE FROM ledger_meta WHERE key = 'vkey'", ()),
    )
    for args in (("check",), ("checkpoint",), ("proof", "--index", "0")):
        p = run(work, *args, ok=False)
        assert p.returncode == 1 and p.stderr.count("\n") == 1 and "no vkey row" in p.stderr


def test_flipped_tile_byte_proof_exits_1_and_append_signs_nothing(work: Path) -> None:
    init_trusted(work)  # index 0: the registry entry that trusts the samples' key
    run(work, "append", "a0.json", "a1.json")
    run(work, "append", "a2.json", "a3.json")
    import sqlite3

    con = sqlite3.connect(work / "ledger.db")
    blob = bytearray(con.execute("SELECT hashes FROM tiles WHERE level = 0").fetchone()[0])
    con.close()
    blob[3 * 32] ^= 1  # leaf 3
    _sql(
        work,
        ("DROP TRIGGER tiles_extend_only", ()),
        ("UPDATE tiles SET hashes = ? WHERE level = 0", (bytes(blob),)),
    )
    assert run(work, "checkpoint").stdout.split("\n")[1] == "5"
    for args in (("proof", "--index", "1"), ("proof", "--consistency", "3", "5")):
        p = run(work, *args, ok=False)
        assert p.returncode == 1 and p.stderr.count("\n") == 1 and "does not verify" in p.stderr
        assert p.stdout == ""
    p = run(work, "append", "a4.json", ok=False)
    assert p.returncode == 1 and "reproduce the latest checkpoint" in p.stderr
    assert p.stdout == ""
    assert run(work, "checkpoint").stdout.split("\n")[1] == "5"  # nothing was signed
