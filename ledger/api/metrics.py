"""Prometheus metrics of a server, in a registry of its own (made per app, not global).

With ``--workers N`` (N > 1) ``ledger serve`` runs prometheus-client's multiprocess mode: every
worker writes its counters and histograms to files in ``PROMETHEUS_MULTIPROC_DIR`` (a private
directory the server makes, unless the operator names one), and whichever worker answers a scrape
sums them all, so ``/metrics`` is the server's, not one worker's. The tree size is read from the
database at scrape time.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = ["MULTIPROCESS_ENV", "Metrics"]

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

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
            "ledger_queue_depth",
            "Appends admitted and waiting for their proof.",
            multiprocess_mode="livesum",
            registry=r,
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
        self._tree_size = _TreeSize(tree_size)
        r.register(self._tree_size)
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
        if not os.environ.get(MULTIPROCESS_ENV):
            return generate_latest(self.registry)
        from prometheus_client import multiprocess

        every_worker = CollectorRegistry()
        multiprocess.MultiProcessCollector(every_worker)  # type: ignore[no-untyped-call]
        every_worker.register(self._tree_size)
        return generate_latest(every_worker)

    def close(self) -> None:
        """This worker is stopping: its live gauges leave the sum."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


class _TreeSize(Collector):
    """``ledger_tree_size``, read when scraped (one query), in either mode."""

    def __init__(self, read: Callable[[], float]) -> None:
        self._read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield GaugeMetricFamily("ledger_tree_size", "Size of the latest checkpoint.", self._read())
