"""Every ``ledger serve`` setting is in docs/operations.md's table under its environment name, and
``LEDGER_LINGER_MS`` reaches the writer (bounded; 0 turns the group-commit wait off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.ledger.api.server import init_ledger

_DOCS = Path(__file__).parents[3] / "docs" / "operations.md"


def test_every_setting_is_documented_in_the_settings_table() -> None:
    from ledger.api.settings import Settings

    rows = {
        line.split("|")[1].strip(" `")
        for line in _DOCS.read_text().splitlines()
        if line.startswith("| `LEDGER_")
    }
    missing = {f"LEDGER_{name.upper()}" for name in Settings.model_fields} - rows
    assert not missing, f"settings missing from docs/operations.md: {sorted(missing)}"


@pytest.mark.parametrize(("env", "seconds"), [(None, 0.02), ("0", 0.0), ("35.5", 0.0355)])
def test_the_linger_setting_reaches_the_writer(
    env: str | None, seconds: float, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fastapi.testclient import TestClient

    from ledger.api.app import create_app
    from ledger.api.settings import Settings

    if env is not None:
        monkeypatch.setenv("LEDGER_LINGER_MS", env)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    key = init_ledger(db, tmp_path)
    app = create_app(Settings(database_url=db, key_file=key))
    with TestClient(app):
        sequencer = app.state.ledger._seq()
        assert sequencer._linger == pytest.approx(seconds)


@pytest.mark.parametrize("bad", ["-1", "1001", "soon"])
def test_a_linger_out_of_bounds_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledger.api.settings import Settings

    monkeypatch.setenv("LEDGER_LINGER_MS", bad)
    with pytest.raises(ValueError, match="linger_ms"):
        Settings()
