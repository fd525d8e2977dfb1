"""The trust state one process holds, kept current: read again only when the registry moved.

:class:`TrustState` is what :meth:`ledger.log.Ledger.trust` answers from. Each ``current()`` asks
the registry's version (one indexed query, :class:`~ledger.registry.probe.RegistryVersionProbe`)
and re-derives the state from the log only when it moved, so a submission admitted after a
revocation was acknowledged, by any process, is judged with it. ``held(version)`` answers a caller
that read the version itself (the server's loop, :mod:`ledger.api.trust_rounds`).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from ledger.errors import StorageError
from ledger.registry.probe import RegistryVersionProbe

if TYPE_CHECKING:
    from attest.keys import PublicKey
    from ledger.admission import RootFiles, Trust
    from ledger.registry.model import RegistryState
    from ledger.storage import LedgerStore

__all__ = ["TrustState"]


class TrustState:
    """The trust state of one ledger in this process (see the module docstring)."""

    def __init__(self, store: LedgerStore, origin: str) -> None:
        self._store, self._origin = store, origin
        self._held: tuple[int, Trust] | None = None  # (registry version, state)
        self._probe = RegistryVersionProbe(store.engine)
        self._lock = threading.Lock()
        self._roots: RootFiles | None = None

    def current(self) -> Trust:
        """The trust state as committed when this is called."""
        from ledger.admission import RootFiles, Trust

        cached = self._held
        try:
            read = self._read(cached)
        except StorageError as e:
            if "registry_entries" not in str(e):
                raise
            raise StorageError(
                "this ledger predates the trust registry: run `ledger signers init-admin`"
            ) from e
        if read is None:
            assert cached is not None
            return cached[1]
        with self._lock:
            if self._roots is None:
                self._roots = RootFiles()
        version, state, admin = read
        trust = Trust(state, admin, self._roots, self._origin)
        self._held = (version, trust)
        return trust

    def held(self, version: int) -> Trust | None:
        """The state held if it is that of registry version ``version``, else None."""
        cached = self._held
        return cached[1] if cached is not None and _fits(cached, version) else None

    def forget(self) -> None:
        """Drop the held state: the next ``current()`` derives it from the log again."""
        self._held = None

    def _read(
        self, cached: tuple[int, Trust] | None
    ) -> tuple[int, RegistryState, tuple[PublicKey, ...]] | None:
        """(registry version, state, admin keys), or ``None`` when ``cached`` is still current.
        A (re)load re-derives every registry row from the log (:func:`verified_state`)."""
        from ledger.registry.entries import (
            admin_keys_from_pem,
            admin_pem,
            registry_version,
            verified_state,
        )

        if cached is not None and _fits(cached, self._probe.version()):
            return None  # unchanged: one indexed query (registry/probe.py)
        with self._store._conn() as conn:
            version = registry_version(conn)
            admin = admin_keys_from_pem(admin_pem(conn))
            return version, verified_state(conn, admin, self._origin), admin

    def close(self) -> None:
        if self._roots is not None:
            self._roots.close()
        self._probe.close()


def _fits(cached: tuple[int, Trust], version: int) -> bool:
    """Whether ``cached`` is registry version ``version``'s state, with its admin keys."""
    return bool(cached[1].admin_keys) and cached[0] == version
