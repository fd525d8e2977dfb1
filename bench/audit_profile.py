"""Where an audit answer's time goes: the route handlers in-process, under cProfile.

``python -m bench.audit_profile SCENARIO [--size N] [--count 300] [--top 25]`` calls the handler
of each of the first ``count`` questions of one :mod:`bench.audit_1m` scenario directly (the
functions of :mod:`ledger.api.routes_audit`, on the built benchmark ledger), then validates and
serialises the answer as FastAPI does (``EvidenceDoc``), and prints the functions with the most
cumulative and own time and the mean wall time per question. No HTTP, no event loop.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bench.audit_1m import questions
from bench.audit_build import cached
from ledger.api import routes_audit
from ledger.api.audit_models import EvidenceDoc
from ledger.log import Ledger

_ROUTES: dict[str, Callable[..., dict[str, Any]]] = {
    "/api/v1/evidence": routes_audit.get_evidence,
    "/api/v1/search": routes_audit.get_search,
}


def answer(request: Any, path: str) -> bytes:
    """What ``ledger serve`` does for one GET of ``path``, bar HTTP."""
    url = urlsplit(path)
    doc = _ROUTES[url.path](request, None, **dict(parse_qsl(url.query)))
    return EvidenceDoc.model_validate(doc).model_dump_json().encode()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("scenario")
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--count", type=int, default=300)
    ap.add_argument("--top", type=int, default=25)
    args = ap.parse_args(argv)
    directory = cached(args.size)
    paths = questions(directory)[args.scenario].read_text().splitlines()[: args.count]
    with Ledger.open(f"sqlite:///{directory / 'audit.db'}", directory / "audit.key") as lg:
        request = SimpleNamespace(app=SimpleNamespace(state=SimpleNamespace(ledger=lg)))
        for p in paths[:20]:  # warm
            answer(request, p)
        t = time.perf_counter()
        for p in paths:
            answer(request, p)
        plain = (time.perf_counter() - t) / len(paths)
        prof = cProfile.Profile()
        prof.enable()
        for p in paths:
            answer(request, p)
        prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(args.top)
    stats.sort_stats("tottime").print_stats(args.top)
    print(f"{args.scenario}: {plain * 1000:.2f} ms per question unprofiled ({len(paths)})")


if __name__ == "__main__":
    main()
