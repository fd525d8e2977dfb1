"""Dependency collectors on lock files and SBOMs in the formats the tools write."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attest.collect.deps import collect_dependencies
from attest.errors import CollectorError
from attest.statement import ResourceDescriptor

DATA = Path(__file__).parent / "data"


def by_uri(spec: str) -> dict[str, ResourceDescriptor]:
    return {d.uri: d for d in collect_dependencies(spec)}


def test_requirements_with_hashes() -> None:
    deps = by_uri(str(DATA / "requirements.txt"))
    assert set(deps) == {
        "pkg:pypi/certifi@2024.7.4",
        "pkg:pypi/requests@2.31.0",
        "pkg:pypi/urllib3@2.2.2",
    }
    # one hash → the digest; several (one per artifact) → annotations
    assert dict(deps["pkg:pypi/requests@2.31.0"].digest) == {
        "sha256": "58cd2187c01e70e6e26505bca751777aa9f2ee0b7f4300988b709f44e013003f"
    }
    certifi = deps["pkg:pypi/certifi@2024.7.4"]
    assert not certifi.digest and len(certifi.annotations["hashes"]) == 2
    assert deps["pkg:pypi/requests@2.31.0"].name == "requests"  # canonical name


def test_unpinned_requirement_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "requirements.txt"
    f.write_text("requests>=2\n")
    with pytest.raises(CollectorError, match=r"requirements.txt:1: requests is not pinned"):
        collect_dependencies(str(f))
    f.write_text("this is not :: a requirement\n")
    with pytest.raises(CollectorError, match="not a requirement"):
        collect_dependencies(str(f))


def test_poetry_lock() -> None:
    deps = by_uri(str(DATA / "poetry.lock"))
    assert set(deps) == {"pkg:pypi/click@8.1.7", "pkg:pypi/flask-cors@4.0.1"}
    assert dict(deps["pkg:pypi/flask-cors@4.0.1"].digest) == {
        "sha256": "f2a704e4458665580c074b714c4627dd5a306b333deb9074d0b1794dfa2fb677"
    }


def test_uv_lock_skips_the_project_itself() -> None:
    deps = by_uri(str(DATA / "uv.lock"))
    assert set(deps) == {"pkg:pypi/idna@3.7", "pkg:pypi/six@1.16.0"}
    assert len(deps["pkg:pypi/idna@3.7"].annotations["hashes"]) == 2


def test_pipfile_lock_default_and_develop() -> None:
    deps = by_uri(str(DATA / "Pipfile.lock"))
    assert set(deps) == {"pkg:pypi/packaging@24.1", "pkg:pypi/pytest@8.3.2"}


def test_package_lock_v3_scoped_and_links() -> None:
    deps = by_uri(str(DATA / "package-lock.json"))
    assert set(deps) == {"pkg:npm/%40babel/core@7.24.9", "pkg:npm/lodash@4.17.21"}
    lodash = deps["pkg:npm/lodash@4.17.21"]
    assert list(lodash.digest) == ["sha512"] and len(lodash.digest["sha512"]) == 128


def test_package_lock_v1_is_refused(tmp_path: Path) -> None:
    f = tmp_path / "package-lock.json"
    f.write_text(json.dumps({"lockfileVersion": 1, "dependencies": {}}))
    with pytest.raises(CollectorError, match="lockfileVersion 1"):
        collect_dependencies(str(f))


def test_go_sum() -> None:
    deps = by_uri(str(DATA / "go.sum"))
    assert set(deps) == {
        "pkg:golang/github.com/google/uuid@v1.6.0",
        "pkg:golang/golang.org/x/mod@v0.17.0",
    }
    assert deps["pkg:golang/github.com/google/uuid@v1.6.0"].digest["dirHash"].startswith("h1:")


def test_cargo_lock_skips_workspace_members() -> None:
    deps = by_uri(str(DATA / "Cargo.lock"))
    assert set(deps) == {"pkg:cargo/serde@1.0.204"}
    assert deps["pkg:cargo/serde@1.0.204"].digest["sha256"].startswith("bc76f558")


def test_cyclonedx_nested_components() -> None:
    deps = by_uri(str(DATA / "bom.cdx.json"))
    assert set(deps) == {
        "pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.1",
        "pkg:maven/com.fasterxml.jackson.core/jackson-core@2.17.1",
    }
    assert "sha256" in deps["pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.17.1"].digest


def test_spdx_skips_the_described_package() -> None:
    deps = by_uri(str(DATA / "sbom.spdx.json"))
    assert list(deps) == ["pkg:apk/alpine/musl@1.2.4-r2?arch=x86_64&distro=3.19.1"]


def test_running_environment_lists_this_interpreter() -> None:
    deps = by_uri("python-env")
    assert any(u.startswith("pkg:pypi/cryptography@") for u in deps)
    assert any(u.startswith("pkg:pypi/provenance-ledger@") for u in deps)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("poetry.lock", "[[package]\nname=", "not valid TOML"),
        ("Pipfile.lock", "{}", "no _meta"),
        ("package-lock.json", "{", "not valid JSON"),
        ("go.sum", "github.com/x v1\n", "not a go.sum line"),
        ("sbom.json", '{"bomFormat": "SPDX"}', "not a CycloneDX"),
        ("Gemfile.lock", "GEM", "unknown dependency file"),
        ("uv.lock", "[[package]]\nversion = '1'\n", "unexpected structure"),
    ],
)
def test_broken_files_give_one_clear_error(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    f = tmp_path / name
    f.write_text(content)
    with pytest.raises(CollectorError, match=message):
        collect_dependencies(str(f))


def test_missing_and_unreadable(tmp_path: Path) -> None:
    with pytest.raises(CollectorError, match="does not exist"):
        collect_dependencies(str(tmp_path / "poetry.lock"))
    f = tmp_path / "requirements.txt"
    f.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(CollectorError, match="not UTF-8"):
        collect_dependencies(str(f))
