"""What `attest provenance`, `scan`, `sign` and subject resolution do with hostile input (issue 7):
one line, exit 2, no output file — and never a signed predicate the verifier would refuse. Each
failing scenario is in the test's name; each test failed on the code before the fix."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from attest.cli import app
from attest.collect.deps import collect_dependencies
from attest.collect.subjects import resolve_subjects
from attest.dsse import Envelope
from attest.errors import CollectorError

DATA = Path(__file__).parent / "data"


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("GITHUB_ACTIONS", "GITLAB_CI", "ATTEST_KEY", "LEDGER_URL", "ATTEST_KEY_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    assert CliRunner().invoke(app, ["keygen", "-o", "k"]).exit_code == 0
    (tmp_path / "app.whl").write_bytes(b"wheel")
    return tmp_path


def refused(work: Path, *args: str, message: str = "") -> str:
    """Run ``attest ARGS --key k --out out.json``: exit 2, one line, nothing written."""
    r = CliRunner().invoke(app, [*args, "--key", "k", "--out", "out.json"])
    assert r.exit_code == 2, (r.stdout, r.stderr, r.exception)
    assert r.stderr.startswith("attest: error: ") and r.stderr.count("\n") == 1, r.stderr
    assert message in r.stderr, r.stderr
    assert not (work / "out.json").exists()
    assert not list(work.glob(".out.json.*"))
    return r.stderr


def statement_of(work: Path, *args: str) -> dict:  # type: ignore[type-arg]
    r = CliRunner().invoke(app, [*args, "--key", "k", "--out", "out.json"])
    assert r.exit_code == 0, r.stderr
    return json.loads(Envelope.from_json((work / "out.json").read_bytes()).unverified_payload)  # type: ignore[no-any-return]


# --- §3: provenance inputs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("package-lock.json", {"packages": {"node_modules/x": {"name": 5, "version": "1"}}}),
        ("package-lock.json", {"packages": {"node_modules/x": {"version": 1}}}),
        ("package-lock.json", {"packages": {"node_modules/x": {"version": ["1"]}}}),
        ("Cargo.lock", '[[package]]\nname = 5\nversion = "1"\nsource = "x"\n'),
        ("Cargo.lock", '[[package]]\nname = "a"\nversion = 1\nsource = "x"\n'),
    ],
    ids=["npm-name-int", "npm-version-int", "npm-version-list", "cargo-name", "cargo-version"],
)
def test_lock_file_name_or_version_not_a_string_is_exit_2(
    work: Path, name: str, content: object
) -> None:
    text = json.dumps({"lockfileVersion": 3, **content}) if isinstance(content, dict) else content
    (work / name).write_text(str(text))
    refused(work, "provenance", "-s", "app.whl", "--deps", name, message=name)


@pytest.mark.parametrize("line", ["FROM :tag", "FROM @sha256:" + "ab" * 32, "FROM /", "FROM A/B"])
def test_dockerfile_from_that_is_no_image_reference_is_exit_2(work: Path, line: str) -> None:
    (work / "Dockerfile").write_text(line + "\n")
    refused(
        work, "provenance", "-s", "app.whl", "--dockerfile", "Dockerfile", message="Dockerfile:1"
    )


@pytest.mark.parametrize(
    ("location", "info"),
    [
        ("node_modules/../../x", {"version": "1"}),
        ("node_modules/x", {"name": "../../x", "version": "1"}),
        ("node_modules/x", {"name": "@a/../x", "version": "1"}),
        ("node_modules/", {"version": "1"}),
    ],
)
def test_path_like_npm_name_never_becomes_a_purl(work: Path, location: str, info: dict) -> None:  # type: ignore[type-arg]
    lock = {"lockfileVersion": 3, "packages": {"": {}, location: info}}
    (work / "package-lock.json").write_text(json.dumps(lock))
    with pytest.raises(CollectorError, match="package"):
        collect_dependencies("package-lock.json")


def test_path_like_poetry_and_cargo_names_never_become_purls(work: Path) -> None:
    (work / "poetry.lock").write_text('[[package]]\nname = "../../x"\nversion = "1"\n')
    with pytest.raises(CollectorError, match="not a valid pypi package name"):
        collect_dependencies("poetry.lock")
    (work / "Cargo.lock").write_text('[[package]]\nname = "../x"\nversion = "1"\nsource = "s"\n')
    with pytest.raises(CollectorError, match="not a valid cargo package name"):
        collect_dependencies("Cargo.lock")


def test_scoped_npm_and_go_paths_still_become_purls(work: Path) -> None:
    deps = {d.uri for d in collect_dependencies(str(DATA / "package-lock.json"))}
    assert any(u.startswith("pkg:npm/%40babel/core@") for u in deps), deps
    go = {d.uri for d in collect_dependencies(str(DATA / "go.sum"))}
    assert any(u.startswith("pkg:golang/") for u in go)


def test_requirements_direct_file_url_is_recorded_as_a_url_not_an_unversioned_purl(
    work: Path,
) -> None:
    digest = "ab" * 32
    (work / "requirements.txt").write_text(
        f"foo @ file:///opt/wheels/foo-1.0-py3-none-any.whl --hash=sha256:{digest}\nbar==2.0\n"
    )
    deps = {d.name: d for d in collect_dependencies("requirements.txt")}
    assert deps["foo"].uri == "file:///opt/wheels/foo-1.0-py3-none-any.whl"
    assert dict(deps["foo"].digest) == {"sha256": digest}
    assert "version" not in deps["foo"].annotations
    assert deps["bar"].uri == "pkg:pypi/bar@2.0"


# --- §3 and §4: scan --------------------------------------------------------------------------------


def write(work: Path, name: str, doc: object) -> str:
    (work / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return name


GRYPE_EMPTY = {"descriptor": {"version": "0.79.3"}, "matches": []}


@pytest.mark.parametrize(
    "when", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00", "yesterday", 5]
)
def test_scan_report_time_out_of_range_or_unreadable_is_exit_2(work: Path, when: object) -> None:
    doc = {**GRYPE_EMPTY, "descriptor": {"version": "0.79.3", "timestamp": when}}
    refused(work, "scan", "-s", "app.whl", "--report", write(work, "g.json", doc), message="time")


@pytest.mark.parametrize("results", [5, "x", {"packages": []}, None])
def test_scan_osv_report_whose_results_is_not_a_list_is_exit_2(work: Path, results: object) -> None:
    refused(work, "scan", "-s", "app.whl", "--report", write(work, "o.json", {"results": results}))


def test_scan_deeply_nested_report_is_exit_2(work: Path) -> None:
    report = write(work, "deep.json", '{"results": ' + "[" * 50_000 + "]" * 50_000 + "}")
    refused(work, "scan", "-s", "app.whl", "--report", report, message="nested deeper")


def snyk(**vuln: object) -> dict:  # type: ignore[type-arg]
    base = {"id": "SNYK-PY-X-1", "packageName": "requests", "version": "2.0.0", "severity": "high"}
    return {"packageManager": "pip", "vulnerabilities": [{**base, **vuln}]}


def test_scan_vulnerability_id_that_is_an_object_is_refused_not_signed(work: Path) -> None:
    report = write(work, "s.json", snyk(id={"cve": "CVE-2024-1"}))
    refused(work, "scan", "-s", "app.whl", "--report", report, message="id")
    grype = {
        **GRYPE_EMPTY,
        "matches": [{"vulnerability": {"id": ["CVE-1"]}, "artifact": {"name": "x"}}],
    }
    refused(work, "scan", "-s", "app.whl", "--report", write(work, "g.json", grype))


def test_scan_snyk_cve_given_as_a_string_is_one_alias_not_characters(work: Path) -> None:
    report = write(work, "s.json", snyk(identifiers={"CVE": "CVE-2024-3651"}))
    st = statement_of(work, "scan", "-s", "app.whl", "--report", report)
    finding = st["predicate"]["scanner"]["result"][0]
    assert finding["annotations"][0]["aliases"] == ["CVE-2024-3651"]
    (work / "out.json").unlink()
    report = write(work, "s2.json", snyk(identifiers={"CVE": [7]}))
    refused(work, "scan", "-s", "app.whl", "--report", report, message="CVE")


@pytest.mark.parametrize("name", [None, ""])
def test_scan_missing_package_name_never_becomes_pkg_pypi_slash(work: Path, name: object) -> None:
    vuln = snyk()
    vuln["vulnerabilities"][0]["packageName"] = name
    refused(
        work, "scan", "-s", "app.whl", "--report", write(work, "s.json", vuln), message="package"
    )
    osv = {
        "results": [
            {
                "packages": [
                    {"package": {"ecosystem": "PyPI", "version": "1"}, "vulnerabilities": []}
                ]
            }
        ]
    }
    refused(
        work, "scan", "-s", "app.whl", "--report", write(work, "o.json", osv), message="package"
    )


def test_sign_statement_whose_known_predicate_breaks_its_model_is_refused(work: Path) -> None:
    """`attest sign`, like every subcommand, signs only what `attest verify --strict` accepts."""
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [
            {"name": "app.whl", "digest": {"sha256": hashlib.sha256(b"wheel").hexdigest()}}
        ],
        "predicateType": "https://in-toto.io/attestation/vulns/v0.2",
        "predicate": {"scanner": {"uri": "x", "result": [{"id": {"an": "object"}}]}},
    }
    refused(work, "sign", write(work, "st.json", statement), message="refusing to sign")


# --- §4: subjects ------------------------------------------------------------------------------------


def test_symlinked_subject_keeps_its_own_name_not_the_target_path(
    work: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("runner") / "cache" / "real-app-1.0.whl"
    outside.parent.mkdir()
    outside.write_bytes(b"real")
    (work / "dist").mkdir()
    (work / "dist" / "app.whl").symlink_to(outside)
    (work / "dist" / "inside.whl").symlink_to(work / "app.whl")
    names = {s.name: dict(s.digest) for s in resolve_subjects(["dist/app.whl", "dist/*.whl"], work)}
    assert names == {
        "dist/app.whl": {"sha256": hashlib.sha256(b"real").hexdigest()},
        "dist/inside.whl": {"sha256": hashlib.sha256(b"wheel").hexdigest()},
    }
    st = statement_of(work, "provenance", "-s", "dist/app.whl", "-s", "./dist/inside.whl")
    assert [s["name"] for s in st["subject"]] == ["dist/app.whl", "dist/inside.whl"]


def test_absolute_subject_under_the_working_directory_is_named_relative(work: Path) -> None:
    assert resolve_subjects([str(work / "app.whl")], work)[0].name == "app.whl"


def test_glob_double_star_over_a_symlink_loop_finishes_fast(work: Path) -> None:
    deep = work / "src" / "a" / "b"
    deep.mkdir(parents=True)
    (deep / "f.txt").write_bytes(b"f")
    (deep / "loop").symlink_to(work / "src")
    (deep / "up").symlink_to(work)
    started = time.monotonic()
    subjects = resolve_subjects(["src/**"], work)
    everything = resolve_subjects(["**/*.txt"], work)
    assert time.monotonic() - started < 20  # a hang, not a slow machine
    assert [s.name for s in subjects] == ["src/a/b/f.txt"]
    assert [s.name for s in everything] == ["src/a/b/f.txt"]


def test_glob_keeps_glob_manners_for_hidden_files(work: Path) -> None:
    (work / ".secret").mkdir()
    (work / ".secret" / "k.whl").write_bytes(b"hidden")
    (work / ".env.whl").write_bytes(b"hidden")
    assert [s.name for s in resolve_subjects(["**/*.whl"], work)] == ["app.whl"]
    assert [s.name for s in resolve_subjects([".*.whl"], work)] == [".env.whl"]


@pytest.mark.parametrize("how", ["file", "glob", "directory"])
def test_fifo_subject_is_refused_instead_of_hanging(work: Path, how: str) -> None:
    (work / "dist").mkdir()
    os.mkfifo(work / "dist" / "pipe.whl")
    spec = {"file": "dist/pipe.whl", "glob": "dist/*.whl", "directory": "dist"}[how]
    started = time.monotonic()
    refused(work, "provenance", "-s", spec, message="not a regular file")
    assert time.monotonic() - started < 20  # a hang, not a slow machine


@pytest.mark.parametrize("spec", ["", "   "])
def test_empty_subject_spec_is_refused_not_the_whole_working_directory(
    work: Path, spec: str
) -> None:
    refused(work, "provenance", "-s", spec, message="empty subject")
    refused(work, "provenance", "-s", "app.whl", "-s", spec, message="empty subject")
