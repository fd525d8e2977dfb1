"""Fixtures shared by the export/import tests (as library and through the CLI)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from attest.signers import KeySigner
from ledger.log import Ledger
from ledger.registry.admin import create_admin_key
from tests.ledger.exports import trusting_source


@pytest.fixture
def admin(tmp_path: Path) -> KeySigner:
    """The admin key source and target share, so the source's registry entry verifies there."""
    return create_admin_key(tmp_path / "shared.admin.key")


@pytest.fixture
def source(
    tmp_path: Path, signed_samples: list[bytes], sample_pub_pem: bytes, admin: KeySigner
) -> Iterator[Ledger]:
    """The ledger being moved: its own key; record 0 trusts the samples' key, then five samples."""
    url = f"sqlite:///{tmp_path / 'src.db'}"
    with trusting_source(
        url, tmp_path / "src.key", admin, sample_pub_pem, signed_samples[:5]
    ) as lg:
        yield lg
