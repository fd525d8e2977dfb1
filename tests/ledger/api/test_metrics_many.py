"""A ``:batch`` chunk's acknowledgements recorded at once (``Metrics.acknowledged_many``) leave
the same counters and histograms as one ``acknowledged`` call per entry."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client import Histogram

from ledger.api import metrics as metrics_module
from ledger.api.metrics import Metrics

_RESULTS = [(5, False), (5, True), (5, False), (6, False), (6, True), (9, False)]


def _samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in m.registry.collect()
        if family.name != "ledger_tree_size"
        for s in family.samples
        if not s.name.endswith("_created")
    }


@pytest.mark.parametrize("seconds", [0.0, 0.0007, 0.001, 0.03, 0.05, 4.9, 5.0, 6.0, 1e9])
def test_a_chunk_at_once_equals_its_entries_one_by_one(seconds: float) -> None:
    one, many = Metrics(lambda: 0.0), Metrics(lambda: 0.0)
    for size, dup in _RESULTS:
        one.acknowledged(size, dup, seconds)
    many.acknowledged_many(_RESULTS, seconds)
    one.acknowledged(10, False, seconds)  # closes the last checkpoint's count in both
    many.acknowledged(10, False, seconds)
    got, want = _samples(many), _samples(one)
    assert got == pytest.approx(want)  # the sum: n * x against x added n times
    assert want[("ledger_append_seconds_count", ())] == len(_RESULTS) + 1
    assert want[("ledger_appends_total", (("result", "duplicate"),))] == 2


def test_nothing_acknowledged_records_nothing() -> None:
    m, fresh = Metrics(lambda: 0.0), Metrics(lambda: 0.0)
    m.acknowledged_many([], 0.5)
    assert _samples(m) == _samples(fresh)


def test_without_the_histograms_own_values_it_observes_each_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Should prometheus-client rename what it keeps, every entry is still observed."""
    seen: list[float] = []

    class Renamed:
        def observe(self, amount: float) -> None:
            seen.append(amount)

    metrics_module._observe_many(Renamed(), 0.25, 3)  # type: ignore[arg-type]
    assert seen == [0.25, 0.25, 0.25]
    real: Any = Histogram("x_seconds", "x", registry=None, buckets=(0.1, 1.0))
    metrics_module._observe_many(real, 0.5, 4)
    assert real._sum.get() == 2.0
    assert [b.get() for b in real._buckets] == [0.0, 4.0, 0.0]
