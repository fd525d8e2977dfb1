"""Time the story and changes routes on a log of ~21,000 records (h36 F1 / F3 / F4).

One artifact ART built once with 1,000 tests about it, a second build NEW with the same tests'
shape, and 19,000 unrelated builds; then the story of ART and changes ART -> NEW, in process
(``story_document`` / ``changes_document``), with ``query.about`` as given and, with ``--old``,
the implementation from a git revision (``--old REV``) for comparison.

    .venv/bin/python -m bench.story_cost [--old HEAD~1] [--records 19000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from ledger.api.routes_audit import changes_document, story_document
from ledger.index import query as q
from ledger.index import story
from ledger.index.evidence import AuditReader
from ledger.log import Ledger
from ledger.registry import add_signer, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from tests.ledger import audit_samples as s
from tests.ledger.test_index import KEY, _pem

PROV = "https://slsa.dev/provenance/v1"
TEST = "https://in-toto.io/attestation/test-result/v0.1"


def _build(app: str, deps: list[str]) -> bytes:
    resolved = [{"uri": f"pkg:pypi/{d}", "digest": {"sha256": s.sha(d)}} for d in deps]
    pred = {
        "buildDefinition": {"buildType": "https://example.com/b", "resolvedDependencies": resolved},
        "runDetails": {"builder": {"id": "https://ci.example"}},
    }
    return s.sign(s.statement([("app.zip", s.sha(app))], PROV, pred), KEY)


def _test(app: str, n: int) -> bytes:
    pred = {"result": "PASSED", "configuration": [{"name": f"t{n}"}]}
    return s.sign(s.statement([("app.zip", s.sha(app))], TEST, pred), KEY)


def _old_about(rev: str) -> types.ModuleType:
    src = subprocess.run(
        ["git", "show", f"{rev}:ledger/index/query.py"], check=True, capture_output=True, text=True
    ).stdout
    mod = types.ModuleType("old_query")
    sys.modules["old_query"] = mod  # dataclasses look their module up
    exec(compile(src, "old_query.py", "exec"), mod.__dict__)
    return mod


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--old", default=None)
    ap.add_argument("--records", type=int, default=19_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/ledger.db"
        with Ledger.create(url, "bench.example/ledger", Path(tmp) / "k") as lg:
            add_signer(
                lg,
                make_spec("ci", now=lg.now(), key=_pem(KEY)),
                load_admin_key(admin_key_path(Path(tmp) / "k")),
            )
            bodies = [_build("art", ["a==1", "b==2"]), _build("new", ["a==2", "c==1"])]
            bodies += [_test("art", n) for n in range(1000)]
            bodies += [_build(f"other{n}", [f"x{n}==1"]) for n in range(args.records)]
            for k in range(0, len(bodies), 1000):
                lg.append_many(bodies[k : k + 1000])
            reader = AuditReader(lg)
            art, new = "sha256:" + s.sha("art"), "sha256:" + s.sha("new")
            print("log size:", len(bodies) + 1)
            runs = [("new", q.about)]
            if args.old:
                runs.append((f"old ({args.old})", _old_about(args.old).about))
            for name, about in runs:
                story.q.about = about  # type: ignore[attr-defined]
                for label, call in (
                    ("story", lambda: story_document(reader, art, None)),
                    ("changes", lambda: changes_document(reader, art, new, None)),
                ):
                    t = time.perf_counter()
                    doc = call()
                    dt = time.perf_counter() - t
                    print(f"{name:>16} {label:8} {dt:6.2f} s  {len(doc['entries'])} entries")


if __name__ == "__main__":
    main()
