"""Text for a log line: control characters (newlines, escape sequences) written as escapes, so
a file name can neither fake a line of the report (``nl\nverdict: PASSED``) nor colour or move
the terminal."""

from __future__ import annotations

import re

__all__ = ["printable"]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with every C0/C1 control character as its Python escape (``\\n``, ``\\x1b``)."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)
