"""What ``orchestrator status`` shows: one instance's answers, summed up for a person.

:func:`summary` turns a :class:`Frame` (the answers of ``/health?verbose``, ``/ready`` and
two ``/stats`` snapshots) into rich renderables: the same facts as the status page, in
about 25 lines for the demo.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from orchestrator.terminal.fit import Fitted

__all__ = ["PARTS", "Frame", "human_seconds", "rates", "summary"]


@dataclass(frozen=True, slots=True)
class Frame:
    """The answers one look at the instance got."""

    url: str
    health: Mapping[str, Any]
    ready: Mapping[str, Any]
    ready_status: int
    stats: Mapping[str, Any] | None  # None: /stats needs a token and none was given
    rates: Mapping[str, float] | None  # jobs finished per second per kind, None: unknown
    error: str | None = None  # set by --watch when the last look failed


def rates(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, float] | None:
    """Jobs finished (succeeded or failed) per second per kind between two snapshots, timed
    by the instance's own uptime; None when both are the same snapshot."""
    elapsed = after["application"]["uptime_seconds"] - before["application"]["uptime_seconds"]
    if elapsed <= 0:
        return None
    old = before["registry"]["kinds"]
    out = {}
    for kind, now in after["registry"]["kinds"].items():
        then = old.get(kind, {"succeeded_total": 0, "failed_total": 0})
        done = now["succeeded_total"] + now["failed_total"]
        out[kind] = max(0.0, (done - then["succeeded_total"] - then["failed_total"]) / elapsed)
    return out


def human_seconds(seconds: float | None) -> str:
    """``0.4 ms``, ``26 ms``, ``1.2 s``, ``3m 12s``, ``2h 5m``, ``4d 3h``; ``-`` for None."""
    if seconds is None:
        return "-"
    if seconds < 0.001:
        return f"{seconds * 1000:.2f} ms"
    if seconds < 0.01:
        return f"{seconds * 1000:.1f} ms"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, hours, days = int(seconds // 60), int(seconds // 3600), int(seconds // 86400)
    if seconds < 3600:
        return f"{minutes}m {int(seconds % 60)}s"
    if seconds < 86400:
        return f"{hours}h {minutes % 60}m"
    return f"{days}d {hours % 24}h"


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _grid(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, show_edge=False, padding=(0, 2, 0, 0))
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i == 0 else "right", no_wrap=i == 0)
    return table


def _header(frame: Frame) -> Fitted:
    """One line: who, where, state, uptime, ready or not; the URL loses its middle when the
    line is too wide (why it is not ready is on the lines below)."""
    line = Text()
    if frame.stats is None:
        line.append("instance at ")
    else:
        app = frame.stats["application"]
        line.append(f"{app['name']} {app['version']}", style="bold")
        line.append(" at ")
    url = (len(line), len(line) + len(frame.url))
    line.append(frame.url)
    if frame.stats is not None:
        line.append(f" · {app['state']} · up {human_seconds(app['uptime_seconds'])}")
    ready = frame.ready_status == 200
    line.append(" · ")
    line.append("ready" if ready else "not ready", style="green" if ready else "bold red")
    return Fitted(line, squeezable=url)


def _drain(frame: Frame) -> Text | None:
    if frame.stats is None:  # /ready tells a drain, not whose: the stats need the token
        if frame.ready_status != 200 and frame.ready.get("reason") == "draining":
            return Text("DRAINING: /ready answers 503 (drained or stopping)", style="bold yellow")
        return None
    if not frame.stats.get("http", {}).get("draining"):
        return None
    stopping = frame.stats["application"]["state"] != "running"
    what = "stopping: draining before the stop" if stopping else "drained by an operator"
    return Text(f"DRAINING: {what}; /ready answers 503", style="bold yellow")


def _health(frame: Frame) -> RenderableType:
    """A line per component; a failing one says for how long and why (the reason is
    shortened to the width, whole in ``--json``)."""
    healthy = frame.health.get("healthy", False)
    title = Text("Health   ")
    title.append("healthy" if healthy else "unhealthy", style="green" if healthy else "bold red")
    checks: Mapping[str, Mapping[str, Any]] = frame.health.get("checks", {})
    named = max(map(len, checks), default=0)
    ages = {name: _age(frame.health, check) for name, check in checks.items()}
    aged = max((len(age) for name, age in ages.items() if not checks[name]["healthy"]), default=0)
    rows: list[RenderableType] = [title]
    for name, check in checks.items():
        ok = check["healthy"]
        row = Text(f"  {name:<{named}}  ")
        row.append("healthy" if ok else "unhealthy", style="green" if ok else "bold red")
        if not ok:
            row.append(f"  {ages[name]:<{aged}}  {check.get('reason') or ''}".rstrip())
        rows.append(Fitted(row))
    return Group(*rows)


def _age(health: Mapping[str, Any], check: Mapping[str, Any]) -> str:
    """``for 3m 12s``: how long the verdict has held at the report's time (both times are
    the instance's own, to the second); empty when unknown."""
    if not check.get("since") or not health.get("timestamp"):
        return ""
    since = datetime.fromisoformat(check["since"])
    seconds = max(0, round((datetime.fromisoformat(health["timestamp"]) - since).total_seconds()))
    return f"for {seconds} s" if seconds < 60 else f"for {human_seconds(seconds)}"


def _known(frame: Frame) -> Mapping[str, Any]:
    """The stats of a frame that has them (the parts after health are shown only then)."""
    if frame.stats is None:
        raise ValueError("no stats in this frame")
    return frame.stats


def _jobs(frame: Frame) -> RenderableType:
    table = _grid("Jobs", "per s", "done", "failed", "timed out", "refused", "p50", "p99")
    for kind, k in _known(frame)["registry"]["kinds"].items():
        rate = frame.rates.get(kind) if frame.rates is not None else None
        latency = k["latency_seconds"]
        table.add_row(f"  {kind}", "-" if rate is None else f"{rate:,.1f}",
                      _n(k["succeeded_total"]), _n(k["failed_total"]), _n(k["timed_out_total"]),
                      _n(k["rejected_total"]), human_seconds(latency.get("p50")),
                      human_seconds(latency.get("p99")))  # fmt: skip
    return table


def _queue(frame: Frame) -> RenderableType:
    r = _known(frame)["router"]
    share = r["queued"] / r["capacity"] if r["capacity"] else 0.0
    text = Text(f"Queue    {_n(r['queued'])} of {_n(r['capacity'])} ({share:.0%}) · "
                f"routed {_n(r['routed_total'])} · refused {_n(r['rejected_total'])}")  # fmt: skip
    if r.get("saturated"):
        text.append(" · saturated", style="bold red")
    shedding = _shedding(r)
    return text if shedding is None else Group(Fitted(text), Fitted(shedding))


def _shedding(r: dict[str, Any]) -> Text | None:
    """Why submissions are being refused at once, when they are."""
    if not (r.get("standing") or r.get("saturated")):
        return None
    by = r.get("rejected_by_reason", {})
    why = (f"queue over {human_seconds(r.get('queue_target_seconds'))}" if r.get("standing")
           else "queue full")  # fmt: skip
    return Text(f"         SHEDDING · {why} · refused {_n(by.get('standing_wait', 0))} "
                f"for waits, {_n(by.get('queue_full', 0))} full", style="bold yellow")  # fmt: skip


def _pool(frame: Frame) -> RenderableType:
    p = _known(frame)["pool"]
    if not p.get("enabled", True):
        return Text("Pool     off")
    text = Text(f"Pool     {_n(p['in_use'])} of {_n(p['max_size'])} in use · {_n(p['idle'])} "
                f"idle · {_n(p['waiting'])} waiting · {_n(p['connect_failures_total'])} "
                "connect failures")  # fmt: skip
    error = p.get("last_connect_error")
    if not error:
        return text
    last = Text(f"         last: {error['type']}: {error['message']}", style="red")
    return Group(Fitted(text), Fitted(last))


def _workers(frame: Frame) -> RenderableType:
    w = _known(frame)["workers"]
    text = Text(f"Workers  {_n(w['alive'])} of {_n(w['count'])} alive · {_n(w['busy'])} busy · "
                f"{_n(w['stuck'])} stuck · {_n(w['deaths_total'])} deaths")  # fmt: skip
    if w["alive"] < w["count"] or w["stuck"]:
        text.stylize("bold red")
    if "in_progress_limit" not in w:
        return text
    if not w["adaptive_limit"]:
        limit = Text(f"         limit off: {_n(w['in_progress_limit'])} jobs at once")
    else:
        limit = Text(f"         limit {_n(w['in_progress_limit'])} of {_n(w['count'])} jobs at "
                     f"once · loop lag {human_seconds(w['lag_seconds'])} (target "
                     f"{human_seconds(w['lag_target_seconds'])})")  # fmt: skip
        if w["in_progress_limit"] < w["count"]:
            limit.stylize("yellow")
    return Group(Fitted(text), Fitted(limit))


def _sources(frame: Frame) -> RenderableType:
    """A line per job source (none without one): its state, the group's backlog, what it
    settled, and its last error."""
    lines: list[RenderableType] = []
    for name, src in _known(frame).get("sources", {}).items():
        lag, pending = _n(src["group_lag"] or 0), _n(src["group_pending"] or 0)
        text = Text(f"Source   {name} · {src['state'].replace('_', ' ')} · lag {lag} · "
                    f"pending {pending} · acked {_n(src['acked_total'])} · dead "
                    f"{_n(src['dead_lettered_total'])}")  # fmt: skip
        if src["state"] == "disconnected":
            text.stylize("bold red")
        lines.append(Fitted(text))
        error = src.get("last_error")
        if error:
            lines.append(Fitted(Text(f"         last error: {error}", style="red")))
    return Group(*lines)


def _http(frame: Frame) -> Text:
    h = _known(frame).get("http", {})
    if h.get("state") == "disabled" or "requests_total" not in h:
        return Text("HTTP     off")
    counts = " · ".join(f"{cls} {_n(n)}" for cls, n in h["requests_total"].items() if n)
    conns = h.get("connections", {})
    return Text(f"HTTP     {counts or 'no requests yet'} · 429s "
                f"{_n(h['rate_limit']['rejected_total'])} · 401s "
                f"{_n(h['auth']['failures_total'])} · connections "
                f"{_n(conns.get('active', 0))} of {_n(conns.get('max', 0))}")  # fmt: skip


PARTS = {"health": _health, "jobs": _jobs, "queue": _queue, "pool": _pool,
          "workers": _workers, "sources": _sources, "http": _http}  # fmt: skip


def summary(frame: Frame, section: str | None = None) -> RenderableType:
    """The whole summary, or only ``section``'s part (with the header line either way)."""
    return Group(*_lines(frame, section))


def _lines(frame: Frame, section: str | None) -> Iterator[RenderableType]:
    yield _header(frame)
    drain = _drain(frame)
    if drain is not None:
        yield Fitted(drain)
    if frame.error:
        yield Fitted(Text(f"last look failed: {frame.error}", style="bold red"))
    for name, part in PARTS.items():
        if section in (None, name) and (frame.stats is not None or name == "health"):
            shown = part(frame)
            yield Fitted(shown) if isinstance(shown, Text) else shown
    if frame.stats is None:
        yield Text("The rest needs a token: set "
                   "ORCHESTRATOR_HTTP_TOKEN or use --token-file", style="dim")  # fmt: skip
