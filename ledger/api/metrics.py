"""Prometheus metrics of one server process, in a registry of its own (made per app, not global).

With ``--workers N`` each worker process reports its own numbers; scrape each, or run one
worker per process manager slot.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_BATCH_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)


class Metrics:
    def __init__(self, tree_size: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.appends = Counter("ledger_appends", "Acknowledged appends.", ["result"], registry=r)
        self.refusals = Counter(
            "ledger_refusals",
            "Requests or entries refused, by problem type.",
            ["reason"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "ledger_queue_depth", "Appends admitted and waiting for their proof.", registry=r
        )
        self.batch_entries = Histogram(
            "ledger_batch_request_entries",
            "Entries per :batch request.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.sequenced_batch = Histogram(
            "ledger_sequenced_batch_size",
            "Entries of this process acknowledged under one checkpoint.",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.latency = Histogram(
            "ledger_append_seconds",
            "Admission to acknowledged proof, per entry.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.tree_size = Gauge("ledger_tree_size", "Size of the latest checkpoint.", registry=r)
        self.tree_size.set_function(tree_size)
        self._last_checkpoint: tuple[int, int] = (-1, 0)

    def refused(self, reason: str) -> None:
        self.refusals.labels(reason).inc()

    def acknowledged(self, tree_size: int, duplicate: bool, seconds: float) -> None:
        self.appends.labels("duplicate" if duplicate else "new").inc()
        self.latency.observe(seconds)
        size, count = self._last_checkpoint
        if tree_size == size:
            self._last_checkpoint = (size, count + 1)
            return
        if count:
            self.sequenced_batch.observe(count)
        self._last_checkpoint = (tree_size, 1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
