"""Lines shortened to a width: at word boundaries, never inside parentheses, ``…`` at the
end; a squeezable part (the header's URL) loses its middle first."""

from __future__ import annotations

import pytest
from rich.console import Console
from rich.text import Text

from orchestrator.terminal.fit import Fitted, shorten, squeeze

POOL = "connection factory failed 3 times in a row (last: ConnectionRefusedError)"


@pytest.mark.parametrize(
    ("text", "width", "shown"),
    [
        (POOL, len(POOL), POOL),
        (POOL, 72, "connection factory failed 3 times in a row…"),
        (POOL, 44, "connection factory failed 3 times in a row…"),
        (POOL, 42, "connection factory failed 3 times in a…"),
        ("Pool     0 of 8 in use · 0 idle · 3 waiting", 35, "Pool     0 of 8 in use · 0 idle…"),
        ("queue full (12 refused), refusing (3 s)", 30, "queue full (12 refused)…"),
        ("last: OSError: [Errno 111] call failed ('127.0.0.1', 5432)", 50,
         "last: OSError: [Errno 111] call failed…"),
        ("http://orchestrator.internal:8080", 20, "http://orchestrator…"),
        ("(all of it in parentheses)", 12, "(all of it…"),
        ("word", 1, "…"),
        ("word", 0, ""),
    ],
    ids=["fits", "drops-the-parenthesis", "just-fits", "a-word-less", "no-dangling-dot",
         "keeps-a-whole-parenthesis", "nested", "one-long-word", "all-inside", "one-cell",
         "no-cell"],
)  # fmt: skip
def test_shorten(text: str, width: int, shown: str) -> None:
    assert shorten(Text(text), width).plain == shown


def test_shorten_keeps_the_styles() -> None:
    text = Text("recycler ")
    text.append("unhealthy", style="bold red")
    text.append(" for a long while now")
    short = shorten(text, 23)
    assert short.plain == "recycler unhealthy for…"
    assert [(s.start, s.end, str(s.style)) for s in short.spans] == [(9, 18, "bold red")]


def test_squeeze_takes_the_middle_of_the_part() -> None:
    url = "http://orchestrator-canary.jobs.svc.cluster.local:8080"
    line = Text(f"at {url} · not ready")
    short = squeeze(line, 3, 3 + len(url), 50)
    assert short.cell_len == 50
    assert short.plain.startswith("at http://orchestr")
    assert short.plain.endswith("local:8080 · not ready")
    assert short.plain.count("…") == 1
    assert squeeze(line, 3, 3 + len(url), 200) is line
    assert squeeze(line, 3, 3 + len(url), 20) is line  # too little of the URL would be left


def test_fitted_shortens_to_the_width_it_is_rendered_at() -> None:
    console = Console(width=30, color_system=None)
    with console.capture() as captured:
        console.print(Fitted(Text(POOL)))
    assert captured.get() == "connection factory failed 3…\n"
