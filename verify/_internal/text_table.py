"""The text report's table, drawn without a rendering library: rich's import and layout cost a
deploy gate ~30 ms of every start, more than the verification itself (docs/design.md, "Verify").

It draws what rich's ``Table`` drew (heavy-head box, one row per rule, the widest column wrapped at
word boundaries to fit the width) and prints every cell literally: rich read ``[...]`` in a cell as
markup and dropped it, so ``step build [app.zip]`` lost its artifact. Colour (green pass, red FAIL)
only on a terminal, and never with ``NO_COLOR`` or ``TERM=dumb``, as rich did.
"""

from __future__ import annotations

import contextlib
import os
import textwrap
from collections.abc import Sequence
from typing import TextIO

__all__ = ["Style", "draw_table", "style_for"]

_UNICODE = ("┏━┳┓", "┃┃┃", "┡━╇┩", "│││", "└─┴┘")
_ASCII = ("+-++", "|||", "|-+|", "|||", "+-++")
_MIN_WRAPPED = 16  # the narrowest a wrapped column gets


class Style:
    """How the stream shows text: its width, colour, and whether it can draw box lines."""

    def __init__(self, width: int, colour: bool, unicode: bool) -> None:
        self.width, self.colour, self.unicode = width, colour, unicode

    def paint(self, text: str, colour: str) -> str:
        codes = {"green": "32", "red": "31"}
        return f"\x1b[{codes[colour]}m{text}\x1b[0m" if self.colour else text


def style_for(stream: TextIO) -> Style:
    """A terminal's own width and colour; elsewhere (a CI log, a pipe) ``$COLUMNS`` or 80
    columns and no colour."""
    tty = False
    with contextlib.suppress(AttributeError, ValueError):  # a closed or file-less stream
        tty = stream.isatty()
    width = 80
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        width = int(columns)
    elif tty:
        try:
            width = os.get_terminal_size(stream.fileno()).columns or 80
        except (AttributeError, OSError, ValueError):
            width = 80
    plain = "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"
    return Style(width, tty and not plain, _encodes(getattr(stream, "encoding", None), "┃━┡"))


def _encodes(encoding: str | None, text: str) -> bool:
    """Whether a stream of ``encoding`` can write ``text`` (an in-memory stream has none)."""
    if not encoding:
        return True
    try:
        text.encode(encoding)
    except (LookupError, UnicodeEncodeError):
        return False
    return True


def _fit(natural: list[int], width: int) -> list[int]:
    """Column widths that fit ``width``: the widest column gives way first, never below
    :data:`_MIN_WRAPPED` (a narrower terminal gets a wider table rather than unreadable cells)."""
    widths = list(natural)
    room = width - (3 * len(widths) + 1)
    while sum(widths) > room:
        widest = max(range(len(widths)), key=lambda i: widths[i])
        excess = sum(widths) - room
        shrunk = max(_MIN_WRAPPED, widths[widest] - excess)
        if shrunk >= widths[widest]:
            break
        widths[widest] = shrunk
    return widths


def draw_table(
    headers: Sequence[str],
    rows: Sequence[Sequence[tuple[str, str | None]]],
    style: Style,
) -> list[str]:
    """The table's lines: ``rows`` of ``(text, colour or None)`` cells under ``headers``."""
    top, head, rule, body, bottom = _UNICODE if style.unicode else _ASCII
    natural = [
        max([len(h), *(len(line) for r in rows for line in r[i][0].splitlines() or [""])])
        for i, h in enumerate(headers)
    ]
    widths = _fit(natural, style.width)

    def border(chars: str) -> str:
        return chars[0] + chars[2].join(chars[1] * (w + 2) for w in widths) + chars[3]

    def line(cells: Sequence[tuple[str, str | None]], sides: str) -> list[str]:
        wrapped = [
            [part for text in cell.splitlines() or [""] for part in textwrap.wrap(text, w) or [""]]
            for (cell, _), w in zip(cells, widths, strict=True)
        ]
        out = []
        for k in range(max(len(w) for w in wrapped)):
            parts = []
            for (_, colour), lines, w in zip(cells, wrapped, widths, strict=True):
                text = lines[k] if k < len(lines) else ""
                padded = text.ljust(w)
                parts.append(style.paint(padded, colour) if colour and text else padded)
            out.append(f"{sides[0]} " + f" {sides[1]} ".join(parts) + f" {sides[2]}")
        return out

    lines = [border(top), *line([(h, None) for h in headers], head), border(rule)]
    for r in rows:
        lines += line(r, body)
    lines.append(border(bottom))
    return lines
