"""The verifier's state never moves backwards, even when runs sharing a state dir race."""

from __future__ import annotations

from pathlib import Path

from ledger.log import Ledger
from tests.conftest import envelope
from verify.state import save_trusted, state_file


def test_an_older_checkpoint_never_replaces_a_newer_one_written_meanwhile(tmp_path: Path) -> None:
    with Ledger.create(
        f"sqlite:///{tmp_path / 'l.db'}", "test.example/ledger", tmp_path / "k"
    ) as lg:
        lg.append(envelope(1))
        small = lg.checkpoint()
        lg.append(envelope(2))
        big = lg.checkpoint()
    state = tmp_path / "state"
    assert save_trusted(state, big, None)  # another run, started later, finished first
    assert not save_trusted(state, small, None)  # this run loaded no state at its start
    path = state_file(state, "test.example/ledger")
    assert path.read_text() == big.note
    assert small.checkpoint.size < big.checkpoint.size
