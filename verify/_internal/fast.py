"""Argument parsers without typer (or argparse) for the commands a pipeline runs on every deploy:
the default command (``verify ARTIFACT --policy FILE …``), ``verify attestations`` and
``verify sigstore-bundle``.
Importing typer and building its commands costs more than the verification itself (and argparse's
translation lookups ~5 ms of a cold start). Each parser accepts exactly its typer command's
options (a test compares them) in their plain forms (``--opt VALUE``, ``--opt=VALUE``,
``-p VALUE``); anything else (``--help``, an unknown or abbreviated option, a missing value or
required option, ``--``, a bad ``--format``) goes to the typer app, which runs it or says what is
wrong."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from attest._internal.frozen import Frozen, set_field

__all__ = [
    "ATTESTATIONS_OPTIONS",
    "BUNDLE_OPTIONS",
    "CHECK_OPTIONS",
    "SUBCOMMANDS",
    "AttestationsArgs",
    "BundleArgs",
    "CheckArgs",
    "parse_attestations",
    "parse_check",
    "parse_sigstore_bundle",
]

# the typer app's commands other than the default one (a test compares them)
SUBCOMMANDS = frozenset({"attestations", "export-evidence", "layout", "sigstore-bundle"})
# option -> (takes a value, the check() parameter it fills)
CHECK_OPTIONS: dict[str, tuple[bool, str]] = {
    "--policy": (True, "policy"),
    "-p": (True, "policy"),
    "--ledger": (True, "ledger"),
    "--evidence": (True, "evidence"),
    "--db": (True, "db"),
    "--format": (True, "fmt"),
    "--record": (False, "record"),
    "--record-key": (True, "record_key"),
    "--at": (True, "at"),
    "--layout": (True, "layout"),
    "--layout-key": (True, "layout_key"),
    "--link-dir": (True, "link_dir"),
}
# option -> (takes a value, the verify.conformance.sigstore_bundle() parameter it fills)
BUNDLE_OPTIONS: dict[str, tuple[bool, str]] = {
    "--bundle": (True, "bundle"),
    "--certificate-identity": (True, "certificate_identity"),
    "--certificate-oidc-issuer": (True, "certificate_oidc_issuer"),
    "--trusted-root": (True, "trusted_root"),
    "--key": (True, "key"),
}
# option -> (takes a value, the verify.commands.attestations() parameter it fills)
ATTESTATIONS_OPTIONS: dict[str, tuple[bool, str]] = {
    "--policy": (True, "policy"),
    "-p": (True, "policy"),
    "--bundle": (True, "bundle"),
    "--format": (True, "fmt"),
    "--at": (True, "at"),
    "--layout": (True, "layout"),
    "--layout-key": (True, "layout_key"),
    "--link-dir": (True, "link_dir"),
}
_PATHS = frozenset(
    {"policy", "evidence", "record_key", "layout", "link_dir", "bundle", "trusted_root", "key"}
)
_FORMATS = ("text", "json")


class CheckArgs(Frozen):
    """The default command's arguments (the names of :func:`verify.cli.check`'s parameters)."""

    _fields = (
        "artifact",
        "policy",
        "ledger",
        "evidence",
        "db",
        "fmt",
        "record",
        "record_key",
        "at",
        "layout",
        "layout_key",
        "link_dir",
    )
    artifact: str
    policy: Path
    ledger: str | None
    evidence: Path | None
    db: str | None
    fmt: str
    record: bool
    record_key: Path | None
    at: str | None
    layout: Path | None
    layout_key: list[Path]
    link_dir: Path | None

    def __init__(
        self,
        artifact: str,
        policy: Path,
        ledger: str | None = None,
        evidence: Path | None = None,
        db: str | None = None,
        fmt: str = "text",
        record: bool = False,
        record_key: Path | None = None,
        at: str | None = None,
        layout: Path | None = None,
        layout_key: list[Path] | None = None,
        link_dir: Path | None = None,
    ) -> None:
        set_field(self, "artifact", artifact)
        set_field(self, "policy", policy)
        set_field(self, "ledger", ledger)
        set_field(self, "evidence", evidence)
        set_field(self, "db", db)
        set_field(self, "fmt", fmt)
        set_field(self, "record", record)
        set_field(self, "record_key", record_key)
        set_field(self, "at", at)
        set_field(self, "layout", layout)
        set_field(self, "layout_key", [] if layout_key is None else layout_key)
        set_field(self, "link_dir", link_dir)


class BundleArgs(Frozen):
    """``verify sigstore-bundle``'s arguments (its typer command's parameter names)."""

    _fields = (
        "file_or_digest",
        "bundle",
        "certificate_identity",
        "certificate_oidc_issuer",
        "trusted_root",
        "key",
    )
    file_or_digest: str
    bundle: Path
    certificate_identity: str | None
    certificate_oidc_issuer: str | None
    trusted_root: Path | None
    key: Path | None

    def __init__(
        self,
        file_or_digest: str,
        bundle: Path,
        certificate_identity: str | None = None,
        certificate_oidc_issuer: str | None = None,
        trusted_root: Path | None = None,
        key: Path | None = None,
    ) -> None:
        set_field(self, "file_or_digest", file_or_digest)
        set_field(self, "bundle", bundle)
        set_field(self, "certificate_identity", certificate_identity)
        set_field(self, "certificate_oidc_issuer", certificate_oidc_issuer)
        set_field(self, "trusted_root", trusted_root)
        set_field(self, "key", key)


class AttestationsArgs(Frozen):
    """``verify attestations``'s arguments (its typer command's parameter names)."""

    _fields = ("artifact", "policy", "bundle", "fmt", "at", "layout", "layout_key", "link_dir")
    artifact: str
    policy: Path
    bundle: list[Path]
    fmt: str
    at: str | None
    layout: Path | None
    layout_key: list[Path]
    link_dir: Path | None

    def __init__(
        self,
        artifact: str,
        policy: Path,
        bundle: list[Path],
        fmt: str = "text",
        at: str | None = None,
        layout: Path | None = None,
        layout_key: list[Path] | None = None,
        link_dir: Path | None = None,
    ) -> None:
        set_field(self, "artifact", artifact)
        set_field(self, "policy", policy)
        set_field(self, "bundle", bundle)
        set_field(self, "fmt", fmt)
        set_field(self, "at", at)
        set_field(self, "layout", layout)
        set_field(self, "layout_key", [] if layout_key is None else layout_key)
        set_field(self, "link_dir", link_dir)


class _ForTyper(Exception):
    """``argv`` is not a plain command line of this command: typer runs it or says what is
    wrong."""


def _option(
    options: dict[str, tuple[bool, str]], args: list[str], i: int
) -> tuple[str, object, int]:
    """The option at ``args[i]``: (the parameter it fills, its value, the next index)."""
    name, eq, attached = args[i].partition("=") if args[i].startswith("--") else (args[i], "", "")
    spec = options.get(name)
    if spec is None:
        raise _ForTyper  # unknown, abbreviated or clustered
    takes_value, dest = spec
    if not takes_value:
        if eq:
            raise _ForTyper
        return dest, True, i + 1
    if eq:
        value, i = attached, i + 1
    elif i + 1 < len(args) and not args[i + 1].startswith("-"):
        value, i = args[i + 1], i + 2
    else:
        raise _ForTyper  # a missing value, or one that looks like an option
    return dest, Path(value) if dest in _PATHS else value, i


def _parse(
    options: dict[str, tuple[bool, str]], args: list[str], repeated: tuple[str, ...] = ()
) -> tuple[str, dict[str, object]]:
    """(the one positional argument, the options given): each of ``repeated`` (options given
    once per value) as the list of its values, even when absent."""
    got: dict[str, object] = {dest: [] for dest in repeated}
    positional: str | None = None
    i = 0
    while i < len(args):
        if not args[i].startswith("-") or args[i] == "-":
            if positional is not None:
                raise _ForTyper  # a second positional
            positional, i = args[i], i + 1
            continue
        dest, value, i = _option(options, args, i)
        if dest in repeated:
            got[dest] = [*got[dest], Path(str(value))]  # type: ignore[misc]
        else:
            got[dest] = value
    if positional is None:
        raise _ForTyper
    return positional, got


def _plain(argv: Sequence[str]) -> bool:
    return bool(argv) and not any(a in ("--help", "-h", "--version", "--") for a in argv)


def parse_check(argv: Sequence[str]) -> CheckArgs | None:
    """The default command's arguments, or ``None`` when typer should handle ``argv``."""
    if not _plain(argv) or argv[0] in SUBCOMMANDS:
        return None  # another command's line (a file of that name is given as ./NAME)
    args = list(argv[1:] if argv[0] == "check" else argv)
    try:
        artifact, got = _parse(CHECK_OPTIONS, args, ("layout_key",))
    except _ForTyper:
        return None
    if "policy" not in got or got.get("fmt", "text") not in _FORMATS:
        return None
    return CheckArgs(artifact, **got)  # type: ignore[arg-type]


def parse_sigstore_bundle(argv: Sequence[str]) -> BundleArgs | None:
    """``verify sigstore-bundle …``'s arguments (``argv`` without the command name), or ``None``
    when typer should handle them."""
    if not _plain(argv):
        return None
    try:
        file_or_digest, got = _parse(BUNDLE_OPTIONS, list(argv))
    except _ForTyper:
        return None
    if "bundle" not in got:
        return None
    return BundleArgs(file_or_digest, **got)  # type: ignore[arg-type]


def parse_attestations(argv: Sequence[str]) -> AttestationsArgs | None:
    """``verify attestations …``'s arguments (``argv`` without the command name), or ``None``
    when typer should handle them."""
    if not _plain(argv):
        return None
    try:
        artifact, got = _parse(ATTESTATIONS_OPTIONS, list(argv), ("bundle", "layout_key"))
    except _ForTyper:
        return None
    if "policy" not in got or not got["bundle"] or got.get("fmt", "text") not in _FORMATS:
        return None
    return AttestationsArgs(artifact, **got)  # type: ignore[arg-type]
