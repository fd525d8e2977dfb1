"""Build times, always UTC: ``startedOn`` from an option, the CI, or the moment attest started."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from attest._internal.fields import parse_rfc3339
from attest.errors import InvalidInput

__all__ = ["Clock", "parse_time", "started_on", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str, what: str = "time") -> datetime:
    """An RFC 3339 time (or a Unix timestamp) as an aware UTC datetime."""
    text = value.strip()
    if text.replace(".", "", 1).isdigit():
        try:
            return datetime.fromtimestamp(float(text), UTC)
        except (ValueError, OverflowError, OSError) as e:
            raise InvalidInput(f"{what} {value!r} is out of range as a Unix time") from e
    try:
        return parse_rfc3339(text)
    except ValueError as e:
        raise InvalidInput(f"{what} {value!r} {e}") from e


def started_on(option: str | None, env: Mapping[str, str], ci_started: str) -> datetime | None:
    """``--started-on``, else ``$ATTEST_STARTED_ON``, else the CI job start, else unknown."""
    for value, what in (
        (option, "--started-on"),
        (env.get("ATTEST_STARTED_ON"), "ATTEST_STARTED_ON"),
        (ci_started, "CI job start"),
    ):
        if value:
            return parse_time(value, what)
    return None
