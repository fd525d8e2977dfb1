"""How many batches ``ledger serve`` admits at once: every core but the loop's and the writer's."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from ledger.api.metrics import Metrics
from ledger.api.service import WriteService, admission_threads
from ledger.errors import Error, InvalidInput


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
