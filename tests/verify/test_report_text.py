"""The text report (rich): every rule, its result and reason, cells printed
literally, the reason wrapped to the width, colour only on a terminal (NO_COLOR drops colour, not bold)."""

from __future__ import annotations

import io
from datetime import UTC, datetime

import pytest

from verify.artifact import Artifact
from verify.pipeline import Outcome
from verify.report import render_text
from verify.rules import RuleResult


class _Terminal(io.StringIO):
    encoding = "utf-8"

    def isatty(self) -> bool:
        return True


def _outcome(*rules: RuleResult) -> Outcome:
    arts = [
        Artifact("dist/app.zip", {"sha256": "ab" * 32}),
        Artifact("b [x].txt", {"sha256": "cd" * 32}),
    ]
    return Outcome(arts, datetime(2026, 11, 29, tzinfo=UTC), rules=list(rules))


RULES = (
    RuleResult("step build [dist/app.zip]", True, "signed by ci (threshold 1)"),
    RuleResult("trusted evidence", False, "no attestation signed by a signer the policy " * 3),
)


def test_every_rule_is_a_row_and_brackets_are_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.StringIO()
    render_text(_outcome(*RULES), out)
    text = out.getvalue()
    lines = text.splitlines()
    assert lines[0] == f"verify: dist/app.zip (sha256:{'ab' * 32}), b [x].txt (sha256:{'cd' * 32})"
    assert "step build [dist/app.zip]" in text  # rich read [...] as markup and dropped it
    table = [line for line in lines if line[:1] in "┏┃┡│└"]
    assert {len(line) for line in table} == {80}  # a pipe or CI log: 80 columns
    header = table[1].split("┃")[1:4]
    assert [h.strip() for h in header] == ["rule", "result", "reason"]
    assert len(header[0]) == len(" step build [dist/app.zip] ")  # the widest rule name
    assert "│ pass   │" in text and "│ FAIL   │" in text
    assert lines[-1] == "verdict: FAILED: policy not met (exit 1)"
    assert "\x1b[" not in text


def test_the_reason_wraps_to_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = io.StringIO()
    render_text(_outcome(*RULES), out)
    table = [line for line in out.getvalue().splitlines() if line[:1] in "┏┃┡│└"]
    assert {len(line) for line in table} == {60}
    reason = " ".join(line.split("│")[3].strip() for line in table if line.startswith("│"))
    assert "no attestation signed by a signer the policy no attestation" in reason


def test_colour_only_on_a_terminal_without_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    tty = _Terminal()
    render_text(_outcome(*RULES), tty)
    assert "\x1b[32mpass" in tty.getvalue() and "\x1b[31mFAIL" in tty.getvalue()
    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Terminal()
    render_text(_outcome(*RULES), plain)
    assert "\x1b[32m" not in plain.getvalue() and "\x1b[31m" not in plain.getvalue()


def test_a_stream_that_cannot_encode_box_lines_gets_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    out = io.TextIOWrapper(io.BytesIO(), encoding="ascii")
    render_text(_outcome(*RULES), out)
    out.flush()
    text = out.buffer.getvalue().decode("ascii")  # type: ignore[attr-defined]
    assert "| step build [dist/app.zip] | pass   |" in text


def test_control_characters_in_names_are_escaped_not_printed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A file named ``nl\\nverdict: PASSED (exit 0)`` or holding escape sequences cannot fake a
    line of the report or colour the log (hostile round 2)."""
    monkeypatch.delenv("COLUMNS", raising=False)
    arts = [Artifact("nl\nverdict: PASSED (exit 0)\x1b[31mRED", {"sha256": "ab" * 32})]
    rule = RuleResult("step build [nl\nverdict: PASSED]", False, "why\x1b[2J")
    out = io.StringIO()
    render_text(Outcome(arts, datetime(2026, 11, 29, tzinfo=UTC), rules=[rule]), out)
    text = out.getvalue()
    assert "\x1b" not in text
    assert not any(line.startswith("verdict: PASSED") for line in text.splitlines())
    assert "nl\\nverdict: PASSED (exit 0)\\x1b[31mRED" in text


def test_an_error_line_escapes_control_characters(capsys: pytest.CaptureFixture[str]) -> None:
    from verify.cli import Format, _fail
    from verify.errors import EvidenceUnavailable

    with pytest.raises(SystemExit) as e:
        _fail(EvidenceUnavailable("nothing about a\nverdict: PASSED"), Format.text, "a")
    assert e.value.code == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a\\nverdict: PASSED" in err


def test_unicode_separators_and_bidi_controls_are_escaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Hostile finding F8: U+2028/U+2029 start a new line in many viewers, and bidirectional
    controls reorder what a reader sees (Trojan Source); none reaches the text report raw."""
    monkeypatch.delenv("COLUMNS", raising=False)
    hostile = "".join(
        chr(c) for c in (0x2028, 0x2029, 0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F))
    ) + "".join(chr(c) for c in range(0x2066, 0x206A))
    arts = [Artifact(f"app{hostile}\u2028verdict: PASSED (exit 0)", {"sha256": "ab" * 32})]
    rule = RuleResult(f"step build [{hostile}]", False, f"why{hostile}")
    out = io.StringIO()
    render_text(Outcome(arts, datetime(2026, 11, 29, tzinfo=UTC), rules=[rule]), out)
    text = out.getvalue()
    assert not any(c in text for c in hostile)
    assert "app\\u2028\\u2029" in text and "\\u202e" in text and "\\u2069" in text


# h35 #5a: zero-width, BOM, soft hyphen, fillers and tag characters reached the report raw,
# so ``app\u200b.tar.gz`` read as ``app.tar.gz``
INVISIBLE = (
    "\u200b\u200c\u200d\u2060\ufeff\u00ad\u034f\u180e\u115f\u1160\u3164\uffa0"
    "\U000e0000\U000e0001\U000e0041\U000e007f\u0600\U0001d173"
)


def test_invisible_and_format_characters_are_escaped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    arts = [Artifact(f"app{INVISIBLE}.tar.gz", {"sha256": "ab" * 32})]
    rule = RuleResult(f"step build [{INVISIBLE}]", False, f"CVE-2024-1{INVISIBLE}X")
    out = io.StringIO()
    render_text(Outcome(arts, datetime(2026, 11, 29, tzinfo=UTC), rules=[rule]), out)
    text = out.getvalue()
    assert not any(c in text for c in INVISIBLE)
    for said in ("\\u200b", "\\ufeff", "\\xad", "\\u034f", "\\u3164", "\\U000e0041", "\\U000e0000"):
        assert said in text


def test_printable_keeps_visible_text_and_escapes_each_hidden_character() -> None:
    from verify._internal.printable import printable

    assert printable("café ñ 日本 Ünïcode — ok ✓") == "café ñ 日本 Ünïcode — ok ✓"
    assert printable("a\u200bb\nc\U000e0041") == "a\\u200bb\\nc\\U000e0041"
    assert printable("tab\there\x1b[31m") == "tab\\there\\x1b[31m"
