"""What :mod:`ledger.client` checks beyond the proofs: that an answer answers the question asked,
and that the derived parts of a story or a change are what the proved entries say.

Each check reads only proved bodies and records (the entries of the same answer), with the rules
the server used to index them (:func:`ledger.index.facts.read_facts`) and to derive the story and
the changes (:mod:`ledger.index.derived`); any difference is an
:class:`~ledger.errors.IntegrityError` naming the entry. What the client can check:

- evidence: every entry's statement names the digest asked (one of them, for many) as a subject;
- search: ``subject``, ``predicateType``, ``builder``, ``repo``, ``ref``, ``commit``, ``step``
  (the body's own values), ``since``/``until`` (the signed record time), ``purl`` + ``versions``
  (a dependency of that package whose version is in the range, by ``univers``), ``vuln`` (the body
  says something about it) with ``status`` (the body gives that status for some product);
- ``asOf``: the checkpoint is no larger than the size asked, no entry's record time is after the
  time asked (the prefix check against the trusted checkpoint is :mod:`ledger.client`'s);
- story and changes: :mod:`ledger.client_story_checks`.

What no client can check from an answer: that a matching record was not left out (a page shows
what is in it, not what is missing), that a status is the latest when a later record about the
product is not in the answer, and — without replaying the trust registry — the ``signer`` filter
and the signer names of a story (returned apart, as unverified). So a story's or a change's
``complete: true`` is the server's claim; ``complete: false`` says which bound cut what.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ledger.errors import IntegrityError
from ledger.index.facts import Facts, read_facts
from ledger.index.params import (
    VersionMatcher,
    parse_as_of,
    parse_digest,
    parse_status,
    parse_text,
    parse_time_param,
    parse_versions,
)

if TYPE_CHECKING:
    from ledger.client import Entry, Evidence

__all__ = [
    "AsOfQuestion",
    "SearchFilters",
    "check_subjects",
    "digest_of",
    "refuse",
    "terms_of",
]

_TERMS = ("subject", "predicateType", "builder", "repo", "ref", "commit", "step")


def digest_of(name: str, value: str) -> str:
    """``value`` as the server reads an artifact digest (``alg:hex``, lower case)."""
    return parse_digest(name, value)


def terms_of(facts: Facts) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for kind, value in facts.terms:
        out.setdefault(kind, set()).add(value)
    return out


def refuse(message: str, index: int | None = None) -> IntegrityError:
    return IntegrityError(f"the server's answer is not what it claims: {message}", index)


def check_subjects(entries: Iterable[Entry], digests: set[str]) -> None:
    """Every entry's statement names one of ``digests`` as a subject."""
    for e in entries:
        subjects = terms_of(read_facts(e.body)).get("subject", set())
        if not subjects & digests:
            raise refuse(
                f"entry {e.index} is about {sorted(subjects)[:3]}, not {sorted(digests)[:3]} "
                "asked (an answer to another question)",
                e.index,
            )


@dataclass(frozen=True)
class AsOfQuestion:
    """``asOf`` as asked: a size, or a time in the record-time form."""

    size: int | None
    time: str | None

    @classmethod
    def parse(cls, value: str | None) -> AsOfQuestion | None:
        got = parse_as_of(value)
        return None if got is None else cls(got.size, got.time)

    def check(self, ev: Evidence) -> None:
        if self.size is not None and ev.checkpoint.size > self.size:
            raise refuse(f"asked as of size {self.size}, answered from size {ev.checkpoint.size}")
        if self.time is not None:
            for e in ev.entries:
                if e.record.time > self.time:
                    raise refuse(
                        f"asked as of {self.time}, entry {e.index} was logged at {e.record.time}",
                        e.index,
                    )


@dataclass(frozen=True)
class SearchFilters:
    """The filters of a search that a proved body can show (see the module docstring)."""

    terms: tuple[tuple[str, str], ...] = ()
    since: str | None = None
    until: str | None = None
    versions: VersionMatcher | None = None
    vuln: str | None = None
    status: str | None = None

    @classmethod
    def parse(cls, filters: Mapping[str, Any]) -> SearchFilters:
        """The filters as the server parses them (a bad one is the same ``BadQuery``, before
        anything is asked)."""

        def text(name: str) -> str | None:
            value = filters.get(name)
            return None if value is None else str(value)

        terms = []
        for name in _TERMS:
            value = text(name)
            if value is not None:
                v = parse_digest(name, value) if name == "subject" else parse_text(name, value)
                assert v is not None
                terms.append((name, v.lower() if name == "commit" else v))
        return cls(
            tuple(terms),
            parse_time_param("since", text("since")),
            parse_time_param("until", text("until")),
            parse_versions(text("purl"), text("versions")),
            parse_text("vuln", text("vuln")),
            parse_status(text("status")),
        )

    def check(self, entries: Sequence[Entry]) -> None:
        for e in entries:
            self._check(e)

    def _check(self, e: Entry) -> None:
        facts = read_facts(e.body)
        for name, value in self.terms:
            if (name, value) not in facts.terms:
                raise refuse(f"entry {e.index} does not have {name} {value!r}", e.index)
        t = e.record.time
        if (self.since is not None and t < self.since) or (
            self.until is not None and t > self.until
        ):
            raise refuse(f"entry {e.index} was logged at {t}, outside the range asked", e.index)
        m = self.versions
        if m is not None and not any(
            d.package == m.package and m.matches(d.version) for d in facts.deps
        ):
            raise refuse(f"entry {e.index} has no dependency {m.package} as asked", e.index)
        if self.vuln is not None and not any(
            f.vuln == self.vuln and (self.status is None or f.status == self.status)
            for f in facts.vulns
        ):
            status = f" as {self.status}" if self.status else ""
            raise refuse(f"entry {e.index} does not report {self.vuln}{status}", e.index)
