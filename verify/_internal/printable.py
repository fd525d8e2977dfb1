"""Text for a log line: control characters (newlines, escape sequences) written as escapes, so
a file name can neither fake a line of the report (``nl\nverdict: PASSED``) nor colour or move
the terminal; so are Unicode's line and paragraph separators (a new line to many viewers) and
its bidirectional controls, which reorder what a reader sees (``FAIL`` shown as ``LIAF``, or a
name read as another: Trojan Source, CVE-2021-42574)."""

from __future__ import annotations

import re

__all__ = ["printable"]

_CONTROL = re.compile(
    r"[\x00-\x1f\x7f-\x9f"  # C0 and C1 controls
    r"\u2028\u2029"  # line and paragraph separators
    r"\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]"  # bidirectional marks and controls
)


def printable(text: str) -> str:
    """``text`` with every C0/C1 control character, line or paragraph separator and bidirectional
    control as its Python escape (``\\n``, ``\\x1b``, ``\\u202e``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
