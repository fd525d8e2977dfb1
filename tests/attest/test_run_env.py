"""``attest run`` hands the command it wraps an environment without attest's secrets."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from attest.run import run_step

SECRETS = {
    "ATTEST_KEY_PASSPHRASE": "hunter2-passphrase",
    "LEDGER_TOKEN": "ledger-bearer-token",
    "SIGSTORE_ID_TOKEN": "oidc-id-token",
}


def test_run_step_does_not_pass_the_key_passphrase_or_ledger_token_to_the_build_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("BUILD_FLAVOUR", "release")  # an ordinary variable still reaches it
    result = run_step(
        ["sh", "-c", "env > seen.env"],
        materials=[],
        products=["seen.env"],
        base=tmp_path,
        clock=lambda: datetime.now(UTC),
    )
    assert result.exit_code == 0
    seen = (tmp_path / "seen.env").read_text()
    assert "BUILD_FLAVOUR=release" in seen
    for name, value in SECRETS.items():
        assert name not in seen and value not in seen
