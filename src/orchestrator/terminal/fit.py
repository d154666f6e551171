"""One line of the summary stays one line of the terminal, whatever its width.

:class:`Fitted` wraps a :class:`~rich.text.Text` and, when rendered, shortens it to the
width it is given: a part marked as squeezable (the URL of the header) loses its middle
first; then the line is cut at the last word boundary that fits and ends in ``…``. A cut
never falls inside parentheses: a parenthesised part that does not fit whole is dropped
whole, so what is left still reads. ``orchestrator status --json`` has every text in full.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

__all__ = ["ELLIPSIS", "Fitted", "shorten", "squeeze"]

ELLIPSIS = "…"
_TRAILING = " ·,;:"
"""What a cut line does not end with before its ellipsis (a dangling separator)."""


def _cut(plain: str, budget: int) -> int:
    """Where to cut ``plain`` so that it takes at most ``budget`` cells: the last word
    boundary outside parentheses that fits, else the last point outside them, else
    ``budget`` characters in (a single word wider than the line)."""
    boundary = outside = 0
    depth = used = 0
    for i, char in enumerate(plain):
        if depth == 0:
            outside = i
            if char.isspace() or char == "(":
                boundary = i
        used += cell_len(char)
        if used > budget:
            break
        depth = max(0, depth + {"(": 1, ")": -1}.get(char, 0))
    return boundary or outside or budget


def shorten(text: Text, width: int) -> Text:
    """``text`` if it fits ``width`` cells; else its longest head that ends at a word
    boundary outside parentheses, followed by ``…``."""
    if text.cell_len <= width:
        return text
    if width <= 1:
        return Text(ELLIPSIS[:width])
    head = text[: _cut(text.plain, width - 1)]
    head.rstrip()
    while head.plain and head.plain[-1] in _TRAILING:
        head.right_crop(1)
    head.append(ELLIPSIS, style=text.style)
    return head


def squeeze(text: Text, start: int, end: int, width: int) -> Text:
    """``text`` with the middle of ``text[start:end]`` replaced by ``…`` so that it fits
    ``width`` cells, keeping at least 8 characters of that part; unchanged if it fits."""
    over = text.cell_len - width
    keep = (end - start) - over - len(ELLIPSIS)
    if over <= 0 or keep < 8:
        return text
    head, tail = start + (keep + 1) // 2, end - keep // 2
    out = text[:head]
    out.append(ELLIPSIS)
    out.append_text(text[tail:])
    return out


class Fitted:
    """A line that is shortened to the width it is rendered at, never wrapped.

    Args:
        text: the whole line.
        squeezable: ``(start, end)`` of the part to shorten in the middle first.
    """

    def __init__(self, text: Text, squeezable: tuple[int, int] | None = None) -> None:
        self.text = text
        self.squeezable = squeezable

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        text = self.text
        if self.squeezable is not None:
            text = squeeze(text, *self.squeezable, width)
        line = shorten(text, width)
        line.no_wrap = True
        yield line
