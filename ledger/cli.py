"""The ``ledger`` command: init, append, checkpoint, proof, check, export, import (and, from
:mod:`ledger.cli_serve`, serve and tokens).

Machine-read answers are JSON on stdout; errors are one line on stderr with a non-zero exit:
2 bad input, 3 not found, 4 storage failure, 1 integrity failure (``check``), 5 not trusted (a
signature the trust registry does not allow; nothing was written). Every command's ``--help``
ends with an example and these codes.
"""

from __future__ import annotations

import base64
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import IO, Annotated, Any

import typer

from ledger.bodies import MAX_BODY_BYTES
from ledger.errors import (
    AppendsFailed,
    Error,
    IntegrityError,
    InvalidInput,
    NoteError,
    NotFound,
    NotTrusted,
    Overloaded,
    StorageError,
)
from ledger.keys import default_key_path, load_signer
from ledger.log import Ledger, utc_now
from ledger.note import NoteVerifier, parse_verifier

app = typer.Typer(add_completion=False, no_args_is_help=True)

DISTRIBUTION = "provenance-ledger"
EXIT_CODES = (
    "Exit codes: 0 ok, 1 integrity failure, 2 bad input, 3 not found, 4 database failure, "
    "5 not trusted."
)


def _epilog(example: str) -> str:
    """What ends every command's ``--help``: one example that works as written, and the codes."""
    return f"Example: {example}\n\n{EXIT_CODES}"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"ledger {metadata.version(DISTRIBUTION)}")
        raise typer.Exit()


@app.callback(epilog=EXIT_CODES)
def _main(
    _version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Provenance Ledger: the append-only log."""


DEFAULT_DB = "sqlite:///ledger.db"
DbOpt = Annotated[str, typer.Option("--db", envvar="LEDGER_DATABASE_URL", help="Database URL.")]
KeyOpt = Annotated[
    Path | None,
    typer.Option(
        "--key-file", envvar="LEDGER_KEY_FILE", help="Checkpoint key (default: derived from --db)."
    ),
]

_EXIT = {
    IntegrityError: 1,
    InvalidInput: 2,
    NotFound: 3,
    StorageError: 4,
    Overloaded: 4,
    NotTrusted: 5,
}


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


def _emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except Error as e:
        first = e.__cause__ if isinstance(e, AppendsFailed) else e  # its first failure decides
        code = next((c for t, c in _EXIT.items() if isinstance(first, t)), 2)
        where = (
            f" (index {first.index})"
            if isinstance(first, IntegrityError) and first.index is not None
            else ""
        )
        typer.echo(f"ledger: error: {e}{where}", err=True)
        raise typer.Exit(code) from None


def _key(db: str, key_file: Path | None) -> Path:
    return key_file or default_key_path(db)


def _open(db: str, key_file: Path | None, *, writer: bool) -> Ledger:
    return Ledger.open(db, _key(db, key_file) if writer else None)


@app.command(epilog=_epilog("ledger init --origin example.com/ledger > ledger.vkey"))
def init(
    origin: Annotated[
        str, typer.Option(help="Log origin, e.g. example.com/ledger (the key name).")
    ],
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
    admin_key: Annotated[
        Path | None,
        typer.Option(help="Reuse this admin key (e.g. the source's, before `ledger import`)."),
    ] = None,
) -> None:
    """Create the schema, the checkpoint key and the admin key; print the verifier key."""
    from ledger.registry.admin import admin_key_path, load_admin_key

    with _errors():
        key = _key(db, key_file)
        admin = load_admin_key(admin_key) if admin_key else None
        with Ledger.create(db, origin, key, admin_key=admin) as ledger:
            typer.echo(ledger.store.meta()["vkey"])
            where = admin_key or admin_key_path(key)
            typer.echo(
                f"ledger: created {db}; checkpoint key in {key}, admin key in {where} "
                "(keep both private)",
                err=True,
            )


@app.command(epilog=_epilog("ledger append build.intoto.json"))
def append(
    files: Annotated[list[Path], typer.Argument(help="DSSE envelopes or Sigstore bundles (JSON).")],
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
) -> None:
    """Admit every document (all or none), append them, print each one's proof.

    Admission checks shape, Statement and a signature the trust registry allows (exit 5 if
    not); the output per document is index, leaf hash, inclusion proof and checkpoint."""
    with _errors():
        contents = [_read_body(f) for f in files]
        with _open(db, key_file, writer=True) as ledger:
            admitted = []
            for f, content in zip(files, contents, strict=True):
                try:
                    admitted.append(ledger.admit(content))
                except Error as e:
                    raise type(e)(f"{f}: {e}") from e
            for r in ledger.append_admitted(admitted):
                _emit(
                    {
                        "index": r.index,
                        "leafHash": _b64(r.leaf_hash),
                        "inclusionProof": [_b64(p) for p in r.inclusion_proof],
                        "treeSize": r.tree_size,
                        "checkpoint": r.checkpoint,
                        "duplicate": r.duplicate,
                    }
                )


def _read_body(path: Path) -> bytes:
    """A body file, read no further than one byte past the size limit (``/dev/zero`` is endless)."""
    try:
        with path.open("rb") as f:
            content = f.read(MAX_BODY_BYTES + 1)
    except OSError as e:
        raise InvalidInput(f"cannot read {path}: {e.strerror}") from e
    if len(content) > MAX_BODY_BYTES:
        raise InvalidInput(f"{path} is larger than the {MAX_BODY_BYTES}-byte body limit")
    return content


@app.command(epilog=_epilog("ledger checkpoint"))
def checkpoint(db: DbOpt = DEFAULT_DB) -> None:
    """Print the latest signed checkpoint note."""
    with _errors(), _open(db, None, writer=False) as ledger:
        sys.stdout.write(ledger.checkpoint().note)


@app.command(epilog=_epilog("ledger proof --index 0"))
def proof(
    index: Annotated[int | None, typer.Option(help="Record index for an inclusion proof.")] = None,
    size: Annotated[
        int | None, typer.Option(help="Tree size (default: latest checkpoint).")
    ] = None,
    consistency: Annotated[
        tuple[int, int] | None, typer.Option(help="OLD NEW: consistency proof between two sizes.")
    ] = None,
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Print an inclusion proof (--index) or a consistency proof (--consistency OLD NEW)."""
    with _errors():
        if (index is None) == (consistency is None):
            raise InvalidInput("give exactly one of --index N or --consistency OLD NEW")
        with _open(db, None, writer=False) as ledger:
            if consistency is not None:
                s1, s2 = consistency
                _emit(
                    {
                        "size1": s1,
                        "size2": s2,
                        "proof": [_b64(p) for p in ledger.consistency(s1, s2)],
                    }
                )
                return
            assert index is not None
            p = ledger.inclusion(index, size)
            _emit(
                {
                    "index": p.index,
                    "treeSize": p.tree_size,
                    "leafHash": _b64(p.leaf_hash),
                    "inclusionProof": [_b64(h) for h in p.proof],
                    "checkpoint": p.checkpoint,
                }
            )


def _progress(label: str, total: int | None) -> tuple[Callable[[int], None], Callable[[], None]]:
    """A rich progress bar on a terminal; nothing otherwise."""
    if not sys.stderr.isatty():
        return (lambda _n: None), (lambda: None)
    from rich.progress import Progress

    bar = Progress(transient=True)
    task = bar.add_task(label, total=total)
    bar.start()
    return (lambda n: bar.update(task, completed=n)), bar.stop


CheckVkeyOpt = Annotated[
    str | None,
    typer.Option(
        "--vkey",
        envvar="LEDGER_VKEY",
        help="The ledger's verifier key (as `ledger init` printed it), obtained out of band.",
    ),
]


def _pins(db: str, vkey: str | None, key_file: Path | None) -> dict[str, str]:
    """The verifier keys ``check`` trusts besides the database: --vkey, and the key file if any."""
    if vkey:
        _pinned_key(vkey)  # a malformed (or private) key: one line that does not repeat it
    pins = {"--vkey": vkey} if vkey else {}
    path = _key(db, key_file)
    if key_file is not None or path.exists():
        pins[f"the key file {path}"] = load_signer(path).verifier_key()
    return pins


@app.command(epilog=_epilog('ledger check --vkey "$(cat ledger.vkey)"'))
def check(db: DbOpt = DEFAULT_DB, vkey: CheckVkeyOpt = None, key_file: KeyOpt = None) -> None:
    """Recompute every leaf, link, tile and checkpoint; exit 1 naming the first bad index.

    Checkpoints are verified with the key stored in the database, which must equal --vkey and
    the key file when either is at hand; without them the check is unpinned (the output says
    "pinned": false): a history rewritten and re-signed with a new key would pass.
    """
    from ledger.fsck import check_ledger
    from ledger.storage import LedgerStore

    with _errors():
        pins = _pins(db, vkey, key_file)
        store = LedgerStore.open(db)
        try:
            store.meta()  # one clear error for a database without a ledger
            try:
                total: int | None = store.size()
            except IntegrityError:  # e.g. a text index: check_ledger names the record
                total = None
            update, stop = _progress("checking", total)
            try:
                report = check_ledger(store, update, pins)
            finally:
                stop()
        finally:
            store.close()
        if not report.pinned:
            typer.echo(
                "ledger: warning: unpinned check: checkpoints were verified with the key stored "
                "in the database itself; give --vkey KEY (or the key file) to pin it",
                err=True,
            )
        _emit(
            {
                "ok": True,
                "pinned": report.pinned,
                "records": report.records,
                "checkpoints": report.checkpoints,
                "tiles": report.tiles,
                "root": _b64(report.root),
            }
        )


@app.command(epilog=_epilog("ledger reindex && ledger check"))
def reindex(db: DbOpt = DEFAULT_DB) -> None:
    """Rebuild the audit indexes from the log alone (one transaction; appends wait for it).

    The rows are exactly what the append path derives, so `ledger check` compares them the same
    way afterwards. Prints the number of records and index rows.
    """
    from ledger._internal.db import upgrade_schema
    from ledger.index.maintain import reindex as rebuild
    from ledger.storage import LedgerStore

    with _errors():
        store = LedgerStore.open(db)
        try:
            store.meta()
            upgrade_schema(store.engine)
            size = store.size()
            update, stop = _progress("reindexing", size)
            try:
                rows = rebuild(store, update)
            finally:
                stop()
        finally:
            store.close()
        _emit({"ok": True, "records": size, "indexRows": rows})


@app.command("export", epilog=_epilog("ledger export ledger.jsonl"))
def export_cmd(
    file: Annotated[str, typer.Argument(help="Output JSONL file ('-' for stdout).")],
    db: DbOpt = DEFAULT_DB,
) -> None:
    """Export every record with its exact body as JSON Lines.

    The file appears whole or not at all (see docs/design.md, "Export/import contract"). Exit 1
    if the stored log does not check out (naming the index), 2 if FILE cannot be written or the
    reader of stdout went away ("output closed").
    """
    from ledger._internal.output import atomic_output
    from ledger.transfer import export_jsonl

    with _errors(), _open(db, None, writer=False) as ledger:
        with atomic_output(file) as out:
            n = export_jsonl(ledger, out)
        vkey = ledger.store.meta()["vkey"]
        typer.echo(f"ledger: exported {n} records; import them with --vkey '{vkey}'", err=True)


@contextmanager
def _input(file: str) -> Iterator[IO[bytes]]:
    """Stdin for exactly '-' (``./-`` is a file), else the file; a read error is one line."""
    try:
        if file == "-":
            yield sys.stdin.buffer
            return
        with Path(file).open("rb") as src:
            yield src
    except OSError as e:
        raise InvalidInput(f"cannot read {file}: {e.strerror}") from e


VkeyOpt = Annotated[
    str | None,
    typer.Option(
        "--vkey",
        envvar="LEDGER_IMPORT_VKEY",
        help="The source ledger's verifier key (name+hash+base64), obtained out of band.",
    ),
]


@app.command(
    "import",
    epilog=_epilog('ledger import ledger.jsonl --db sqlite:///copy.db --vkey "$(cat ledger.vkey)"'),
)
def import_cmd(
    file: Annotated[str, typer.Argument(help="A file written by `ledger export` ('-' for stdin).")],
    vkey: VkeyOpt = None,
    db: DbOpt = DEFAULT_DB,
    key_file: KeyOpt = None,
    allow_untrusted: Annotated[
        bool,
        typer.Option(
            help="Migration only: skip the trust-registry check of every body (warns loudly)."
        ),
    ] = False,
) -> None:
    """Verify an export against the pinned --vkey and append it, whole, to an empty ledger.

    Exit 1 if the file's chain, bodies or checkpoint do not check; 2 for a missing or malformed
    --vkey, a malformed file, or a ledger that is not empty; 5 for a body the trust registry the
    file records did not allow at its record's time (--allow-untrusted skips that check, loudly).
    Nothing is written on any failure.
    """
    from ledger.transfer import import_jsonl

    with _errors():
        pinned = _pinned_key(vkey)
        with _open(db, key_file, writer=True) as ledger, _input(file) as src:
            if allow_untrusted:
                typer.echo(
                    f"ledger: WARNING: --allow-untrusted: importing {file} into {db} WITHOUT "
                    f"checking any signature against the trust registry (by "
                    f"{getpass.getuser()} at {utc_now().isoformat()})",
                    err=True,
                )
            n = import_jsonl(ledger, src, pinned, utc_now, allow_untrusted=allow_untrusted)
            _emit({"imported": n, "checkpoint": ledger.checkpoint().note})


def _pinned_key(vkey: str | None) -> NoteVerifier:
    if not vkey:
        raise InvalidInput(
            "import needs the source ledger's verifier key: pass --vkey KEY or set "
            "LEDGER_IMPORT_VKEY (the key `ledger init` printed for it)"
        )
    try:
        return parse_verifier(vkey)
    except NoteError as e:  # its message never repeats the key (it may be a private one)
        raise InvalidInput(f"--vkey: {e}") from None


from ledger.registry.cli import signers_app  # noqa: E402 - needs the helpers above

app.add_typer(signers_app, name="signers")

from ledger import cli_serve  # noqa: E402, F401 - registers `serve` and `tokens`


def main() -> None:
    app()
