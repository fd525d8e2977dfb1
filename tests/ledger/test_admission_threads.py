"""How many batches ``ledger serve`` admits at once: every core but the loop's and the writer's."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from ledger.admission import Admitted
from ledger.api.metrics import Metrics
from ledger.api.service import WriteService, admission_threads
from ledger.bodies import parse_submission
from ledger.errors import Error, InvalidInput, StorageError
from ledger.log import Ledger
from ledger.sequencer import AppendResult
from tests.conftest import envelope


def test_one_core_is_left_to_the_event_loop_and_the_writer() -> None:
    assert [admission_threads(n) for n in (None, 1, 2, 4, 8)] == [1, 1, 1, 3, 7]


class _SlowAdmission:
    """A ledger whose batch admission takes a while and refuses every body; records how many
    batches were being admitted at once."""

    def __init__(self) -> None:
        self.now = self.most = 0
        self._lock = threading.Lock()

    def admit_many(self, bodies: Sequence[bytes], **_: Any) -> list[Error]:
        with self._lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.05)
        with self._lock:
            self.now -= 1
        return [InvalidInput("refused") for _ in bodies]


@pytest.mark.parametrize(("cores", "most"), [(2, 1), (3, 2)])
def test_batches_admitted_at_once(monkeypatch: pytest.MonkeyPatch, cores: int, most: int) -> None:
    monkeypatch.setattr(os, "cpu_count", lambda: cores)
    ledger = _SlowAdmission()

    async def scenario() -> None:
        writer = WriteService(
            ledger,  # type: ignore[arg-type]
            Metrics(lambda: 0.0),
            max_pending=10,
            retry_after=1.0,
        )
        answers = await asyncio.gather(*(writer.append_many([b"{}"]) for _ in range(4)))
        assert all(isinstance(a[0], InvalidInput) for a in answers)

    asyncio.run(scenario())
    assert ledger.most == most


@pytest.mark.parametrize("failure", [StorageError("cannot start the writer: refused"), OSError()])
def test_a_writer_that_does_not_start_gives_every_entry_its_error_and_leaks_no_count(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch, failure: BaseException
) -> None:
    """The writer starts on the first write; if it cannot (PostgreSQL refusing connections),
    nothing of the batch was queued: each entry is told the ledger's error (a defect is raised),
    and the count of waiting appends goes back, so the next batch is not refused as overloaded
    (the hostile test of `submit_many`: every later append was a false 503 until restart)."""
    start = ledger._seq
    calls: list[int] = []

    def fails_once() -> Any:
        if not calls:
            calls.append(1)
            raise failure
        return start()

    monkeypatch.setattr(ledger, "_seq", fails_once)
    subs = [parse_submission(envelope(i)) for i in range(3)]
    monkeypatch.setattr(
        ledger, "admit_many", lambda bodies, **_: [Admitted(s, ("ci",), "x") for s in subs]
    )

    async def scenario() -> None:
        writer = WriteService(ledger, Metrics(lambda: 0.0), max_pending=3, retry_after=1.0)
        if isinstance(failure, Error):
            first = await writer.append_many([b"{}"] * 3)
            assert first == [failure] * 3
        else:
            with pytest.raises(OSError):
                await writer.append_many([b"{}"] * 3)
        assert writer._pending == 0
        again = await writer.append_many([b"{}"] * 3)
        assert [r.index for r in again if isinstance(r, AppendResult)] == [0, 1, 2]

    asyncio.run(scenario())
