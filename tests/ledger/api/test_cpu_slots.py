"""``ledger serve --pin-workers``: each worker takes a free slot and pins all its threads to that
slot's CPU; a dead worker's slot (and CPU) goes to the next one. Pinning runs in child processes
here: pinning the test process would confine the rest of the suite."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

_CHILD = """
import json, os, sys, threading
from ledger.api.cpu_slots import pin_this_worker
early = threading.Event()
t = threading.Thread(target=early.wait, daemon=True)  # a thread started before the pinning
t.start()
pinned = pin_this_worker(sys.argv[1] if len(sys.argv) > 1 else None)
masks = sorted({tuple(sorted(os.sched_getaffinity(int(x)))) for x in os.listdir("/proc/self/task")})
print(json.dumps({"cpu": None if pinned is None else pinned.cpu, "masks": masks}), flush=True)
sys.stdin.read()  # hold the slot until told to go
"""


def _child(slots: Path | None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _CHILD, *([str(slots)] if slots else [])],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def _report(p: subprocess.Popen[str]) -> dict[str, object]:
    assert p.stdout is not None
    out: dict[str, object] = json.loads(p.stdout.readline())
    return out


def _stop(p: subprocess.Popen[str]) -> None:
    assert p.stdin is not None
    p.stdin.close()
    p.wait(timeout=30)


PINNED = ("--workers", "2", "--pin-workers", "--no-access-log")
ONE = ("--workers", "1", "--pin-workers", "--no-access-log")


@contextmanager
def _serving(
    tmp_path: Path, args: tuple[str, ...], env: dict[str, str]
) -> Iterator[tuple[int, int, Path]]:
    """A real ``ledger serve`` with ``args`` on a new SQLite ledger: (its pid, its port, the file
    its log goes to)."""
    from tests.ledger.api.server import free_port, init_ledger

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    port = free_port()
    ledger_bin = str(Path(sys.executable).with_name("ledger"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    log = tmp_path / "serve.log"
    with log.open("wb") as sink:
        server = subprocess.Popen(
            [ledger_bin, "serve", "--db", db, "--key-file", str(key), "--port", str(port), *args],
            env={**clean, **env},
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    try:
        yield server.pid, port, log
    finally:
        server.terminate()
        server.wait(timeout=60)


def _healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


needs_two_cpus = pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="pinning round robin needs two CPUs to tell apart"
)


def test_without_a_slot_directory_nothing_is_pinned() -> None:
    env = {k: v for k, v in os.environ.items() if k != "LEDGER_INTERNAL_CPU_SLOTS"}
    p = subprocess.Popen(
        [sys.executable, "-c", _CHILD],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    report = _report(p)
    _stop(p)
    assert report["cpu"] is None
    assert report["masks"] == [sorted(os.sched_getaffinity(0))]


@needs_two_cpus
def test_workers_take_cpus_round_robin_and_a_dead_ones_cpu_is_taken_again(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    first, second = _child(tmp_path), _child(None, {"LEDGER_INTERNAL_CPU_SLOTS": str(tmp_path)})
    a, b = _report(first), _report(second)
    # every thread of each (the one started before the pinning too) on that worker's CPU alone
    assert a["masks"] == [[a["cpu"]]] and b["masks"] == [[b["cpu"]]]
    assert {a["cpu"], b["cpu"]} == {cpus[0], cpus[1]}
    _stop(first)
    time.sleep(0.1)
    third = _child(tmp_path)
    c = _report(third)
    assert c["cpu"] == a["cpu"]  # the freed slot, not a third one
    for p in (second, third):
        _stop(p)


_PINNED_LOG = re.compile(rb"worker \[(\d+)\] pinned to CPU (\d+) \(slot (\d+)\)")


def _workers(pid: int) -> list[int]:
    """The worker processes of the ``ledger serve`` ``pid`` (not multiprocessing's tracker)."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [c for c in map(int, children) if b"resource_tracker" not in _cmdline(c)]


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return b""


def _masks(pid: int) -> set[tuple[int, ...]]:
    """The CPU masks of every thread of ``pid`` (empty once it has gone)."""
    masks = set()
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return set()
    for t in tasks:
        with contextlib.suppress(ProcessLookupError):
            masks.add(tuple(sorted(os.sched_getaffinity(int(t)))))
    return masks


def test_serve_pins_its_workers_to_different_cpus(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("pinning round robin needs two CPUs to tell apart")
    with _serving(tmp_path, PINNED, {}) as (pid, port, log):
        deadline = time.monotonic() + 90
        said: dict[int, int] = {}  # worker -> the CPU its log line names
        seen: dict[int, set[tuple[int, ...]]] = {}  # worker -> its threads' masks, last look
        while time.monotonic() < deadline:
            ok = _healthy(port)
            said = {int(w): int(c) for w, c, _ in _PINNED_LOG.findall(log.read_bytes())}
            seen = {w: _masks(w) for w in _workers(pid)}
            if ok and len(said) == 2 and all(seen.get(w) == {(c,)} for w, c in said.items()):
                break
            time.sleep(0.3)
        report = f"log says {said}, threads' masks {seen}; server log:\n{log.read_text()}"
        # both workers took a slot, on different CPUs, and every thread of each runs on its CPU
        assert len(said) == 2 and len(set(said.values())) == 2, report
        assert all(seen.get(w) == {(c,)} for w, c in said.items()), report
        assert sorted(seen) == sorted(said), report


def test_a_missing_slot_directory_leaves_the_worker_unpinned_and_says_so(tmp_path: Path) -> None:
    p = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(tmp_path / "gone")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    report = _report(p)
    assert p.stdin is not None and p.stderr is not None
    p.stdin.close()
    p.wait(timeout=30)
    assert report["cpu"] is None
    assert report["masks"] == [sorted(os.sched_getaffinity(0))]
    assert "worker not pinned to a CPU" in p.stderr.read()  # logged, not silent


def test_serve_never_pins_a_single_worker(tmp_path: Path) -> None:
    """One worker's writer thread should have the other cores; and no slot directory is made
    (a single worker's SIGTERM would have left it behind)."""
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    with _serving(tmp_path, ONE, {"TMPDIR": str(scratch)}) as (pid, port, log):
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if time.monotonic() > deadline:
                pytest.fail("ledger serve did not become healthy")
            time.sleep(0.3)
        tasks = os.listdir(f"/proc/{pid}/task")
        masks = {tuple(sorted(os.sched_getaffinity(int(t)))) for t in tasks}
        assert masks == {tuple(sorted(os.sched_getaffinity(0)))}
        assert not list(scratch.glob("ledger-cpu-slots-*"))
        assert b"pinned to CPU" not in log.read_bytes()
    assert not list(scratch.glob("ledger-cpu-slots-*"))
