"""Text for a log line: control characters (newlines, escape sequences) written as escapes, so
a file name can neither fake a line of the report (``nl\nverdict: PASSED``) nor colour or move
the terminal; so are Unicode's line and paragraph separators (a new line to many viewers), its
bidirectional controls, which reorder what a reader sees (``FAIL`` shown as ``LIAF``, or a name
read as another: Trojan Source, CVE-2021-42574), and every invisible character — format
characters (category Cf: zero-width spaces and joiners, the BOM, the soft hyphen, tag
characters) and the blank fillers (Hangul fillers, the combining grapheme joiner) — which make
two names that differ look the same."""

from __future__ import annotations

import re
import unicodedata

__all__ = ["printable"]

_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls
    r"\u2028\u2029"  # line and paragraph separators
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"  # bidirectional marks and controls
)
# invisible, but not of category Cf: the combining grapheme joiner and the Hangul fillers
_BLANK = frozenset("\u034f\u115f\u1160\u3164\uffa0")
_TAGS = range(0xE0000, 0xE0080)  # the tag block, assigned (Cf) or not


def _hidden(c: str) -> bool:
    return (
        _CONTROL.fullmatch(c) is not None
        or c in _BLANK
        or ord(c) in _TAGS
        or unicodedata.category(c) == "Cf"
    )


def _escape(c: str) -> str:
    said = repr(c)[1:-1]  # \n, \x1b, \u202e: Python's own escape where it has one
    if said != c:
        return said
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def printable(text: str) -> str:
    """``text`` with every C0/C1 control character, line or paragraph separator, bidirectional
    control, format character (Unicode category Cf, the tag block) and blank filler as its
    Python escape (``\\n``, ``\\x1b``, ``\\u202e``, ``\\u200b``, ``\\U000e0041``)."""
    if text.isascii():
        return _CONTROL.sub(lambda m: _escape(m.group()), text)
    return "".join(_escape(c) if _hidden(c) else c for c in text)
