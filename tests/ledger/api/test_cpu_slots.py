"""``ledger serve --pin-workers``: each worker takes a free slot and pins all its threads to that
slot's CPU; a dead worker's slot (and CPU) goes to the next one. Pinning runs in child processes
here: pinning the test process would confine the rest of the suite."""

from __future__ import annotations

import json
import os
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
) -> Iterator[tuple[int, int]]:
    """A real ``ledger serve`` with ``args`` on a new SQLite ledger: (its pid, its port)."""
    from tests.ledger.api.server import free_port, init_ledger

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    port = free_port()
    ledger_bin = str(Path(sys.executable).with_name("ledger"))
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    server = subprocess.Popen(
        [ledger_bin, "serve", "--db", db, "--key-file", str(key), "--port", str(port), *args],
        env={**clean, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield server.pid, port
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


def test_serve_pins_its_workers_to_different_cpus(tmp_path: Path) -> None:
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("pinning round robin needs two CPUs to tell apart")
    with _serving(tmp_path, PINNED, {}) as (pid, port):
        deadline = time.monotonic() + 60
        masks: dict[int, set[tuple[int, ...]]] = {}
        while time.monotonic() < deadline:
            ok = _healthy(port)
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            masks = {}
            for child in map(int, children):
                cmd = Path(f"/proc/{child}/cmdline").read_bytes()
                if b"resource_tracker" in cmd:
                    continue
                tasks = os.listdir(f"/proc/{child}/task")
                masks[child] = {tuple(sorted(os.sched_getaffinity(int(t)))) for t in tasks}
            singles = [next(iter(m)) for m in masks.values() if len(m) == 1]
            if ok and len(masks) == 2 and len(set(singles)) == 2:
                break
            time.sleep(0.3)
        pinned = sorted(next(iter(m)) for m in masks.values() if len(m) == 1)
        assert len(masks) == 2 and [len(c) for c in pinned] == [1, 1], masks
        assert pinned[0] != pinned[1]


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
    with _serving(tmp_path, ONE, {"TMPDIR": str(scratch)}) as (pid, port):
        deadline = time.monotonic() + 60
        while not _healthy(port):
            if time.monotonic() > deadline:
                pytest.fail("ledger serve did not become healthy")
            time.sleep(0.3)
        tasks = os.listdir(f"/proc/{pid}/task")
        masks = {tuple(sorted(os.sched_getaffinity(int(t)))) for t in tasks}
        assert masks == {tuple(sorted(os.sched_getaffinity(0)))}
        assert not list(scratch.glob("ledger-cpu-slots-*"))
    assert not list(scratch.glob("ledger-cpu-slots-*"))
