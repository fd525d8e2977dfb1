"""Admissions on the event loop read the trust state in shared rounds, off the loop: requests
that arrive together share one read, and none is answered by a read that began before it arrived
(a registry change committed by then is always seen). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import text

from attest.signers import KeySigner
from ledger.admission import Trust
from ledger.api.trust_rounds import TrustRounds
from ledger.errors import StorageError
from ledger.log import Ledger
from ledger.registry import add_signer, make_spec
from ledger.registry.admin import admin_key_path, load_admin_key
from ledger.registry.probe import AsyncRegistryVersionProbe, RegistryVersionProbe


class Held:
    """A ledger whose first trust read, once done, waits for ``release``; counts the reads; the
    read ``fail_at`` (1-based) raises."""

    def __init__(self, ledger: Ledger, fail_at: int = 0) -> None:
        self.ledger, self.fail_at = ledger, fail_at
        self.reads = 0
        self.reading = threading.Event()
        self.release = threading.Event()

    def trust(self) -> Trust:
        self.reads += 1
        if self.reads == self.fail_at:
            raise StorageError("cannot read the trust registry's version: gone")
        found = self.ledger.trust()
        if self.reads == 1:
            self.reading.set()
            assert self.release.wait(30)
        return found


async def _until(event: threading.Event) -> None:
    while not event.is_set():
        await asyncio.sleep(0.005)


def test_requests_arriving_during_a_round_share_the_next_one(ledger: Ledger) -> None:
    held = Held(ledger)

    async def main() -> list[Trust]:
        rounds = TrustRounds(cast(Ledger, held))
        first = asyncio.ensure_future(rounds.trust())
        await _until(held.reading)
        rest = [asyncio.ensure_future(rounds.trust()) for _ in range(12)]
        await asyncio.sleep(0.05)
        assert held.reads == 1  # the twelve wait: the running round began before them
        held.release.set()
        return await asyncio.gather(first, *rest)

    got = asyncio.run(main())
    assert held.reads == 2  # the held round, then one round for all twelve
    assert all(isinstance(t, Trust) for t in got)
    assert len({id(t) for t in got[1:]}) == 1  # the twelve share one answer


def test_a_change_committed_during_a_round_is_seen_by_requests_arriving_after_it(
    ledger: Ledger, key_path: Path, sample_pub_pem: bytes
) -> None:
    held = Held(ledger)
    admin = load_admin_key(admin_key_path(key_path))

    async def main() -> tuple[Trust, Trust]:
        rounds = TrustRounds(cast(Ledger, held))
        before = asyncio.ensure_future(rounds.trust())
        await _until(held.reading)  # the round has read the registry already
        await asyncio.to_thread(
            add_signer, ledger, make_spec("ci", now=ledger.now(), key=sample_pub_pem), admin
        )
        after = asyncio.ensure_future(rounds.trust())
        await asyncio.sleep(0.02)
        held.release.set()
        return await before, await after

    before, after = asyncio.run(main())
    assert "ci" not in before.state.signers
    assert "ci" in after.state.signers  # not the round that was running when it arrived


def test_a_failed_round_fails_its_requests_and_the_next_round_reads_again(ledger: Ledger) -> None:
    held = Held(ledger, fail_at=2)

    async def main() -> tuple[list[Trust | BaseException], Trust]:
        rounds = TrustRounds(cast(Ledger, held))
        first = asyncio.ensure_future(rounds.trust())
        await _until(held.reading)
        rest = [asyncio.ensure_future(rounds.trust()) for _ in range(3)]
        await asyncio.sleep(0.02)
        held.release.set()
        await first
        failed = await asyncio.gather(*rest, return_exceptions=True)
        return failed, await rounds.trust()

    failed, again = asyncio.run(main())
    assert len(failed) == 3
    for e in failed:
        assert isinstance(e, StorageError) and "trust registry" in str(e)
    assert isinstance(again, Trust) and held.reads == 3


def test_a_request_that_goes_away_does_not_cancel_the_round_of_the_others(
    ledger: Ledger,
) -> None:
    held = Held(ledger)

    async def main() -> Trust:
        rounds = TrustRounds(cast(Ledger, held))
        first = asyncio.ensure_future(rounds.trust())
        await _until(held.reading)
        gone = asyncio.ensure_future(rounds.trust())
        stays = asyncio.ensure_future(rounds.trust())
        await asyncio.sleep(0.02)
        gone.cancel()
        held.release.set()
        await first
        with pytest.raises(asyncio.CancelledError):
            await gone
        return await stays

    assert isinstance(asyncio.run(main()), Trust)
    assert held.reads == 2


# -- on PostgreSQL: the version query awaited on the loop's own connection ---------------------


class HeldProbe(AsyncRegistryVersionProbe):
    """Counts its queries; the first, once it has read the version, waits for ``release``."""

    def __init__(self, ledger: Ledger) -> None:
        super().__init__(ledger.store.engine)
        self.queries = 0
        self.reading = asyncio.Event()
        self.release = asyncio.Event()

    async def version(self) -> int:
        self.queries += 1
        found = await super().version()
        if self.queries == 1:
            self.reading.set()
            await self.release.wait()
        return found


class Counted:
    """A ledger that counts its (thread) trust reads."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger, self.reads = ledger, 0

    def trust(self) -> Trust:
        self.reads += 1
        return self.ledger.trust()

    def trust_at(self, version: int) -> Trust | None:
        return self.ledger.trust_at(version)


def _add_elsewhere(url: str, key_path: Path, admin: KeySigner, pem: bytes) -> None:
    with Ledger.open(url, key_path) as other:
        add_signer(other, make_spec("ci", now=other.now(), key=pem), admin)


@pytest.fixture
def pg_ledger(pg_url: str, key_path: Path) -> Iterator[Ledger]:
    with Ledger.create(pg_url, "test.example/ledger", key_path) as lg:
        lg.trust()  # what a server holds after its first admission
        yield lg


def test_on_postgresql_a_round_is_one_query_on_the_loop_when_nothing_moved(
    pg_ledger: Ledger,
) -> None:
    counted = Counted(pg_ledger)

    async def main() -> list[Trust]:
        probe = HeldProbe(pg_ledger)
        rounds = TrustRounds(cast(Ledger, counted), probe)
        try:
            first = asyncio.ensure_future(rounds.trust())
            await probe.reading.wait()
            rest = [asyncio.ensure_future(rounds.trust()) for _ in range(12)]
            await asyncio.sleep(0.02)
            assert probe.queries == 1
            probe.release.set()
            got = await asyncio.gather(first, *rest)
            assert probe.queries == 2
            return got
        finally:
            await rounds.close()

    got = asyncio.run(main())
    assert counted.reads == 0  # the registry never moved: no thread, no re-read
    assert {id(t) for t in got} == {id(pg_ledger.trust())}


def test_on_postgresql_a_change_committed_during_a_round_is_seen_by_later_requests(
    pg_ledger: Ledger, pg_url: str, key_path: Path, sample_pub_pem: bytes
) -> None:
    counted = Counted(pg_ledger)
    admin = load_admin_key(admin_key_path(key_path))

    async def main() -> tuple[Trust, Trust]:
        probe = HeldProbe(pg_ledger)
        rounds = TrustRounds(cast(Ledger, counted), probe)
        try:
            before = asyncio.ensure_future(rounds.trust())
            await probe.reading.wait()  # the round has read the version already
            # committed by another process's ledger: this one's held state stays the old one
            await asyncio.to_thread(_add_elsewhere, pg_url, key_path, admin, sample_pub_pem)
            after = asyncio.ensure_future(rounds.trust())
            await asyncio.sleep(0.02)
            probe.release.set()
            return await before, await after
        finally:
            await rounds.close()

    before, after = asyncio.run(main())
    assert "ci" not in before.state.signers
    assert "ci" in after.state.signers
    assert counted.reads == 1  # the second round saw the version move and read the state


def test_on_postgresql_a_lost_connection_is_replaced_at_once(pg_ledger: Ledger) -> None:
    """A server restart or an idle timeout ends the kept connection: the next round connects
    again and asks once more, instead of answering 503 (as CI saw when connections were killed)."""
    counted = Counted(pg_ledger)

    async def main() -> None:
        probe = AsyncRegistryVersionProbe(pg_ledger.store.engine)
        rounds = TrustRounds(cast(Ledger, counted), probe)
        try:
            await rounds.trust()
            conn = probe._conn
            assert conn is not None
            _terminate(pg_ledger, conn.info.backend_pid)
            assert isinstance(await rounds.trust(), Trust)
            assert counted.reads == 0  # no fallback: the probe reconnected
            assert probe._conn is not conn
        finally:
            await rounds.close()

    asyncio.run(main())


def test_the_threads_probe_replaces_a_lost_connection_too(ledger: Ledger) -> None:
    probe = RegistryVersionProbe(ledger.store.engine)
    try:
        version = probe.version()
        raw = probe._raw
        if ledger.store.engine.dialect.name == "postgresql":
            _terminate(ledger, raw.driver_connection.info.backend_pid)
        else:
            raw.driver_connection.close()
        assert probe.version() == version
        assert probe._raw is not raw
    finally:
        probe.close()


def test_a_probe_that_cannot_connect_says_why(pg_ledger: Ledger) -> None:
    from ledger._internal.db import make_engine

    url = pg_ledger.store.engine.url.set(port=1).render_as_string(hide_password=False)
    engine = make_engine(url)
    try:
        with pytest.raises(StorageError, match="cannot read the trust registry's version"):
            RegistryVersionProbe(engine).version()

        async def main() -> None:
            with pytest.raises(StorageError, match="cannot read the trust registry's version"):
                await AsyncRegistryVersionProbe(engine).version()

        asyncio.run(main())
    finally:
        engine.dispose()


def _terminate(ledger: Ledger, pid: int) -> None:
    with ledger.store.engine.connect() as other:
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
