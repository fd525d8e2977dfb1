"""The notification that integration fails for the whole log (``pending_acks.sign_failure``)
fails a process's waiting appends only if a holder of the key file announced it, just now, for a
log no larger than the process has seen, and only the first time it arrives
(``FailureNotices``). The hostile tests of 2026-12-01 forged one (anyone who can connect may
NOTIFY) and then replayed a genuine one captured with LISTEN after the log was repaired."""

from __future__ import annotations

import pytest

from ledger.pending_acks import FAILURE_WINDOW_SECONDS, FailureNotices, sign_failure

KEY, SCHEMA, NOW = b"k" * 32, "ledger_a", 1_800_000_000.0
TEXT = "IntegrityError: refusing to extend the log: its latest checkpoint does not verify"


def test_a_genuine_failure_counts_once() -> None:
    notices = FailureNotices(KEY)
    body = sign_failure(KEY, SCHEMA, TEXT, NOW, 40)
    assert notices.open(SCHEMA, body, NOW + 0.2) == TEXT
    assert notices.open(SCHEMA, body, NOW + 0.3) is None  # the same again: a replay
    again = sign_failure(KEY, SCHEMA, TEXT, NOW + 0.5, 40)  # announced again: counts
    assert notices.open(SCHEMA, again, NOW + 0.6) == TEXT


def test_a_text_with_newlines_is_read_whole() -> None:
    text = "StorageError: first line\nsecond line"
    body = sign_failure(KEY, SCHEMA, text, NOW, 3)
    assert FailureNotices(KEY).open(SCHEMA, body, NOW) == text


@pytest.mark.parametrize("late", [FAILURE_WINDOW_SECONDS + 1, -(FAILURE_WINDOW_SECONDS + 1)])
def test_a_failure_outside_the_window_is_stale(late: float) -> None:
    body = sign_failure(KEY, SCHEMA, TEXT, NOW, 40)
    assert FailureNotices(KEY).open(SCHEMA, body, NOW + late) is None


def test_a_failure_of_a_log_that_grew_past_it_since_is_stale() -> None:
    notices = FailureNotices(KEY)
    notices.saw(41, NOW + 2)  # acknowledged under 41 after the failure at 40: repaired
    assert notices.open(SCHEMA, sign_failure(KEY, SCHEMA, TEXT, NOW, 40), NOW + 3) is None
    assert notices.open(SCHEMA, sign_failure(KEY, SCHEMA, TEXT, NOW, 41), NOW + 3) == TEXT


def test_a_log_found_smaller_than_before_is_a_failure_still() -> None:
    """Rows cut back behind the ledger's back: the failure is announced (fresh) for a log
    smaller than this process saw before it, and must count (found by the third hostile test
    of 2026-12-01: every such failure was refused, so appends waited their 60 s)."""
    notices = FailureNotices(KEY)
    notices.saw(9, NOW - 5)
    assert notices.open(SCHEMA, sign_failure(KEY, SCHEMA, TEXT, NOW, 7), NOW + 0.1) == TEXT


@pytest.mark.parametrize(
    "forge",
    [
        lambda b: b.replace("refusing", "Refusing"),  # the text altered
        lambda b: b.replace(":40:", ":99:"),  # the size raised
        lambda b: b.replace(f"mac:{int(NOW * 1000)}", f"mac:{int(NOW * 1000) + 1}"),  # the time
        lambda b: b.rpartition("\n")[0],  # no HMAC line
        lambda b: b + "\n",  # a line after it
        lambda b: b[:-4] + "!!!=",  # not base64
        lambda b: TEXT + "\nmac:" + str(int(NOW * 1000)) + ":40:" + "A" * 44,  # made up
    ],
)
def test_a_forged_failure_counts_for_nothing(forge: object) -> None:
    body = sign_failure(KEY, SCHEMA, TEXT, NOW, 40)
    forged = forge(body)  # type: ignore[operator]
    assert forged != body
    assert FailureNotices(KEY).open(SCHEMA, forged, NOW) is None


def test_another_schemas_failure_or_another_key_counts_for_nothing() -> None:
    body = sign_failure(KEY, SCHEMA, TEXT, NOW, 40)
    assert FailureNotices(KEY).open("ledger_b", body, NOW) is None
    assert FailureNotices(b"x" * 32).open(SCHEMA, body, NOW) is None
    assert FailureNotices(None).open(SCHEMA, body, NOW) is None


def test_a_failure_announced_before_the_waiter_listened_is_a_replay() -> None:
    """A notification reaches only those listening when it is sent; one announced before this
    waiter began to LISTEN (a new process, a reconnection) and arriving now was captured and
    sent again. Its ``_seen`` is empty, so without the listening time it failed every append
    the new waiter held (the replay gap left open on 2026-12-01)."""
    body = sign_failure(KEY, SCHEMA, TEXT, NOW, 40)
    late_listener = FailureNotices(KEY)
    late_listener.listening(NOW + 5)
    assert late_listener.open(SCHEMA, body, NOW + 6) is None
    skewed = FailureNotices(KEY)  # listened a second "after" by its clock: another host's skew
    skewed.listening(NOW + 1)
    assert skewed.open(SCHEMA, body, NOW + 1.1) == TEXT
