"""Build times, always UTC: ``startedOn`` from an option, the CI, or the moment attest started."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from attest.errors import InvalidInput

__all__ = ["Clock", "parse_time", "started_on", "utc_now"]

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def parse_time(value: str, what: str = "time") -> datetime:
    """An RFC 3339 time (or a Unix timestamp) as an aware UTC datetime."""
    text = value.strip()
    try:
        if text.replace(".", "", 1).isdigit():
            return datetime.fromtimestamp(float(text), UTC)
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (ValueError, OverflowError) as e:
        raise InvalidInput(f"{what} {value!r} is not an RFC 3339 time") from e
    if parsed.tzinfo is None:
        raise InvalidInput(f"{what} {value!r} has no time zone")
    return parsed.astimezone(UTC)


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
