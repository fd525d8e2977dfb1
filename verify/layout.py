"""Classic in-toto layout verification, as the in-toto reference verifier does it.

:func:`verify_layout` runs the steps of ``in_toto.verifylib.in_toto_verify`` with the library's own
functions, in the same order, with two differences that make it usable in a deploy gate:

1. the verification time is an argument (``at``): the layout's ``expires`` is compared with it,
   not with the wall clock (``in_toto_verify`` calls ``datetime.now()`` inside);
2. links come from memory (``{filename: bytes}``) or a directory, and inspections run only in the
   directory the caller names (``inspect_in``); a layout with inspections and no such directory
   fails closed instead of running commands in the current directory.

Steps (the numbers of ``in_toto_verify``'s docstring):

1. layout signatures, one valid signature per layout key (``verify_metadata_signatures``);
2. expiry: ``expires <= at`` fails (the reference's comparison). A DSSE layout without
   ``expires`` never expires, as under in-toto 3.1 (its ``Layout()`` fills in now + 1 month);
3. parameter substitution;
4. link loading: ``STEP.KEYID8.link`` for every authorized functionary, preliminary threshold;
5. link signatures and thresholds (``verify_link_signature_thresholds``);
6. sublayouts (the library recursion; only with a link directory, and it uses the wall clock);
7. command alignment (warnings only); 8. threshold constraints; 9. step artifact rules;
10. inspections (``run_all_inspections`` inside ``inspect_in``); 11. inspection rules.

On top of the reference, ``artifacts`` (name -> sha256 hex) must each equal a product of a step:
the reference accepts a swapped final product when the layout has no ``DISALLOW`` rule.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from attest.errors import Error, InvalidInput, SignatureError

__all__ = [
    "LayoutError",
    "LayoutSignatureError",
    "LayoutVerdict",
    "layout_key",
    "verify_layout",
]


class LayoutError(Error):
    """The supply chain does not satisfy the layout. ``code`` is the in-toto exception's name
    (``LayoutExpiredError``, ``LinkNotFoundError``, ``ThresholdVerificationError``,
    ``RuleVerificationError``, ``BadReturnValueError``) or ``ProductMismatch``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{message} ({code})")
        self.code = code


class LayoutSignatureError(LayoutError, SignatureError):
    """A layout key has no valid signature on the layout (``SignatureVerificationError``)."""


@dataclass(frozen=True)
class LayoutVerdict:
    """A verified supply chain: the layout's expiry, its steps, and what the last step made."""

    expires: datetime | None
    steps: tuple[str, ...]
    inspections: tuple[str, ...]
    products: Mapping[str, Mapping[str, str]]  # summary link: last step's products, name -> hashes


def layout_key(data: bytes) -> dict[str, Any]:
    """A layout verification key in in-toto's key-dict form: an SPKI PEM public key (as
    ``in-toto-verify --verification-keys`` loads it) or a securesystemslib JSON public key
    (``{"keytype", "scheme", "keyval": {"public"}}``, as the demo's ``danny.pub``)."""
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    if data.lstrip().startswith(b"{"):
        key = _json_key(data)
    else:
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        try:
            key = SSlibKey.from_crypto(load_pem_public_key(data))
        except (ValueError, TypeError) as e:  # not PEM, or a key type securesystemslib lacks
            raise InvalidInput(f"not a usable layout public key: {e}") from e
    out: dict[str, Any] = key.to_dict()
    out["keyid"] = key.keyid
    return out


_JSON_KEY_FIELDS = ("keytype", "scheme", "keyval", "keyid_hash_algorithms")


def _json_key(data: bytes) -> Any:
    """A securesystemslib JSON public key. Its key id is the one securesystemslib gave it: the
    ``keyid`` it carries, else the SHA-256 of its canonical JSON (with ``keyid_hash_algorithms``
    when the file has them, as legacy securesystemslib computed it)."""
    import hashlib

    from securesystemslib.formats import encode_canonical
    from securesystemslib.signer import SSlibKey  # type: ignore[attr-defined]

    try:
        doc = json.loads(data)
        fields = {k: doc[k] for k in _JSON_KEY_FIELDS if k in doc}
        if "private" in (doc.get("keyval") or {}) and doc["keyval"]["private"]:
            raise InvalidInput("this is a private key: give the public key")
        keyid = (
            doc.get("keyid")
            or hashlib.sha256((encode_canonical(fields) or "").encode()).hexdigest()
        )
        key = SSlibKey.from_dict(keyid, fields)
        key._crypto_key()  # the key material must load
    except InvalidInput:
        raise
    except Exception as e:  # KeyError, ValueError, securesystemslib's own errors
        raise InvalidInput(f"not a usable securesystemslib JSON public key: {e!r}") from e
    return key


def _metadata(data: bytes, what: str) -> Any:
    from in_toto.models.metadata import Metadata

    try:
        return Metadata.from_dict(json.loads(data))
    except Exception as e:  # the library raises anything from KeyError up
        raise InvalidInput(f"{what} is not in-toto metadata: {e}") from e


def _signed_expires(layout: bytes) -> datetime | None:
    """The ``expires`` the signer wrote, read from the signed bytes (call after step 1): the
    library's model fills in now + 1 month for a layout without one."""
    import base64

    doc = json.loads(layout)
    signed = doc["signed"] if "signed" in doc else json.loads(base64.b64decode(doc["payload"]))
    raw = signed.get("expires")
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as e:
        raise InvalidInput(f"layout expires {raw!r} is not a date") from e
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _load_links(layout: Any, links: Mapping[str, bytes]) -> dict[str, dict[str, Any]]:
    """Step 4 from memory: the same file names and preliminary threshold as the library."""
    from in_toto.exceptions import LinkNotFoundError
    from in_toto.models.link import FILENAME_FORMAT

    out: dict[str, dict[str, Any]] = {}
    for step in layout.steps:
        found: dict[str, Any] = {}
        for authorized in step.pubkeys:
            subkeys = layout.keys.get(authorized, {}).get("subkeys", {})
            for keyid in [authorized, *subkeys]:
                name = FILENAME_FORMAT.format(step_name=step.name, keyid=keyid)
                if name in links:
                    found[keyid] = _metadata(links[name], f"link {name}")
        if len(found) < step.threshold:
            raise LinkNotFoundError(
                f"Step '{step.name}' requires '{step.threshold}' link metadata file(s),"
                f" found '{len(found)}'."
            )
        out[step.name] = found
    return out


def _check_products(
    products: Mapping[str, Mapping[str, str]], artifacts: Mapping[str, str]
) -> None:
    for name, sha256 in artifacts.items():
        recorded = products.get(name, {}).get("sha256")
        if recorded is None:
            raise LayoutError("ProductMismatch", f"{name} is not a product of the supply chain")
        if recorded != sha256.lower():
            raise LayoutError(
                "ProductMismatch", f"{name} has sha256 {sha256}, the supply chain made {recorded}"
            )


_INSPECT_TIMEOUT = 10  # seconds, in-toto's default (settings.LINK_CMD_EXEC_TIMEOUT)


def _has_sublayout(steps_metadata: Mapping[str, Mapping[str, Any]]) -> bool:
    return any(
        m.get_payload().type_ == "layout"
        for per_key in steps_metadata.values()
        for m in per_key.values()
    )


def _verified_chain(layout: Any, links: Mapping[str, bytes] | Path) -> dict[str, Any]:
    """Steps (4)-(9): the links, their signatures and thresholds, sublayouts, commands and step
    rules; the reduced chain (one link per step)."""
    from in_toto import verifylib as lib

    if isinstance(links, Path):  # (4)
        steps_metadata = lib.load_links_for_layout(layout, str(links))
    else:
        steps_metadata = _load_links(layout, links)
    steps_metadata = lib.verify_link_signature_thresholds(layout, steps_metadata)  # (5)
    if not isinstance(links, Path) and _has_sublayout(steps_metadata):
        raise InvalidInput("a sublayout's links are read from a directory: pass the link dir")
    base = str(links) if isinstance(links, Path) else "/nonexistent"  # no sublayout to read
    chain = lib.verify_sublayouts(layout, steps_metadata, base, _INSPECT_TIMEOUT)  # (6)
    lib.verify_all_steps_command_alignment(layout, chain)  # (7)
    lib.verify_threshold_constraints(layout, chain)  # (8)
    reduced: dict[str, Any] = lib.reduce_chain_links(chain)
    lib.verify_all_item_rules(layout.steps, reduced)  # (9)
    return reduced


def _inspect(layout: Any, reduced: Mapping[str, Any], inspect_in: Path | None) -> None:
    """Steps (10)-(11): run the inspections in ``inspect_in`` and check their rules."""
    from in_toto import verifylib as lib

    if not layout.inspect:
        return
    if inspect_in is None:
        names = [i.name for i in layout.inspect]
        raise InvalidInput(f"the layout has inspections {names}: name the directory to run them in")
    with contextlib.chdir(inspect_in):
        inspected = lib.run_all_inspections(layout, False, _INSPECT_TIMEOUT)  # (10)
        lib.verify_all_item_rules(layout.inspect, {**reduced, **inspected})  # (11)


def _run(
    raw: bytes,
    metadata: Any,
    keys: dict[str, Any],
    links: Mapping[str, bytes] | Path,
    at: datetime,
    parameters: Mapping[str, str] | None,
    inspect_in: Path | None,
) -> LayoutVerdict:
    from in_toto import verifylib as lib
    from in_toto.exceptions import LayoutExpiredError

    lib.verify_metadata_signatures(metadata, keys)  # (1)
    expires = _signed_expires(raw)
    layout = metadata.get_payload()
    if expires is not None and expires <= at:  # (2)
        raise LayoutExpiredError(f"Layout expired at {expires.isoformat()} (checked at {at})")
    if parameters is not None:
        lib.substitute_parameters(layout, dict(parameters))  # (3)
    reduced = _verified_chain(layout, links)  # (4)-(9)
    _inspect(layout, reduced, inspect_in)  # (10)-(11)
    summary = lib.get_summary_link(layout, reduced, "")
    return LayoutVerdict(
        expires=expires,
        steps=tuple(s.name for s in layout.steps),
        inspections=tuple(i.name for i in layout.inspect),
        products={k: dict(v) for k, v in summary.products.items()},
    )


_SIGNATURE_ERRORS = ("SignatureVerificationError",)


def verify_layout(
    layout: bytes,
    layout_keys: Sequence[bytes],
    links: Mapping[str, bytes] | Path,
    *,
    at: datetime,
    parameters: Mapping[str, str] | None = None,
    inspect_in: Path | None = None,
    artifacts: Mapping[str, str] | None = None,
) -> LayoutVerdict:
    """Verify a signed in-toto layout (classic metablock or DSSE) and its links.

    ``layout_keys`` are SPKI PEM or securesystemslib JSON public keys; each must have signed the layout. ``links`` maps
    link file names (``package.2f89b927.link``) to their bytes, or is a link directory.
    ``inspect_in`` is where the layout's inspection commands run (they are commands from the
    signed layout, run as the reference verifier runs them; the process changes into that
    directory meanwhile, so do not verify layouts with inspections from several threads). ``artifacts`` (name -> sha256 hex)
    must be products of the supply chain. Raises :class:`LayoutError` (or
    :class:`LayoutSignatureError`) naming the in-toto check that failed; ``InvalidInput`` for
    malformed input.
    """
    if at.tzinfo is None:
        raise InvalidInput("the verification time must carry a time zone")
    if not layout_keys:
        raise InvalidInput("at least one layout key is needed")
    from in_toto.exceptions import Error as InTotoError
    from securesystemslib.exceptions import Error as SslibError

    keys: dict[str, Any] = {}
    for k in map(layout_key, layout_keys):
        if k["keyid"] in keys:  # a key file states its own keyid: two must never merge into one
            raise InvalidInput(
                f"two layout keys have the keyid {k['keyid']}: each required key must be "
                "distinct, and a keyid is whatever a key file says"
            )
        keys[k["keyid"]] = k
    metadata = _metadata(layout, "layout")
    try:
        verdict = _run(layout, metadata, keys, links, at, parameters, inspect_in)
    except (InTotoError, SslibError) as e:
        code = type(e).__name__
        cls = LayoutSignatureError if code in _SIGNATURE_ERRORS else LayoutError
        raise cls(code, str(e)) from e
    if artifacts:
        _check_products(verdict.products, artifacts)
    return verdict
