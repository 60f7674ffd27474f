"""`python -m stream kpi`: a running worker's KPIs as a rich table (reads its HTTP API).

One unit per kind of value, everywhere the CLI shows KPIs (this table, the rankings and the
demo's table): scores on their own scale (NPS -100..100, CES 1..7, CSI -9..9, ACSI 0..100),
every ratio in percent with one decimal, counts as integers; the unit is in the label.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True)
class Shown:
    """How one KPI value is shown: its label with the unit, and its format."""

    label: str
    format: Callable[[float], str]


def score(digits: int, signed: bool = False) -> Callable[[float], str]:
    spec = f"{'+' if signed else ''}.{digits}f"
    return lambda value: format(value, spec)


def percent(value: float) -> str:
    return f"{value * 100:.1f}"


def count(value: float) -> str:
    return f"{value:,.0f}"


# metric name (without cx_) -> how it is shown; the order of the `kpi` table
KPIS: dict[str, Shown] = {
    "nps": Shown("NPS (-100..100)", score(1)),
    "nps_lower": Shown("NPS 95% lower bound", score(1)),
    "nps_upper": Shown("NPS 95% upper bound", score(1)),
    "nps_responses": Shown("NPS answers", count),
    "csat_top_box_ratio": Shown("CSAT top box (%)", percent),
    "csat_top2_box_ratio": Shown("CSAT top-2 box (%)", percent),
    "csat_responses": Shown("CSAT answers", count),
    "ces_average": Shown("CES average (1..7)", score(2)),
    "ces_agree_ratio": Shown("CES agree, 5+ (%)", percent),
    "ces_responses": Shown("CES answers", count),
    "thumbs_up_ratio": Shown("thumbs up (%)", percent),
    "csi": Shown("CSI (-9..9)", score(2, signed=True)),
    "acsi_index": Shown("ACSI (0..100)", score(1)),
    "response_ratio": Shown("response ratio (%)", percent),
}
# per window, over every channel and queue (rows of kind "churn" and "sci" in /kpi/all)
WINDOW_KPIS: dict[str, Shown] = {
    "churn_ratio": Shown("churn (%)", percent),
    "churn_cancelled": Shown("churn: customers cancelled", count),
    "churn_active_at_start": Shown("churn: customers active at start", count),
    "sci_secure_ratio": Shown("SCI secure (%)", percent),
    "sci_customers_secure": Shown("SCI customers secure", count),
    "sci_customers_neutral": Shown("SCI customers neutral", count),
    "sci_customers_at_risk": Shown("SCI customers at risk", count),
}
# --sort -> the KPI it ranks by, and the question whose answers a ranking's n counts
SORTS = {"nps": "nps", "csat": "csat_top_box_ratio", "csat_top2": "csat_top2_box_ratio",
         "ces": "ces_average", "n": "nps_responses"}  # fmt: skip
QUESTIONS = {"nps": "NPS", "csat": "CSAT", "csat_top2": "CSAT", "ces": "CES", "n": "NPS"}


class WorkerUnreachable(RuntimeError):
    pass


def fetch(base: str, path: str, params: dict[str, Any]) -> Any:
    """GET `path` of the worker; 400/404 answers come back as their JSON."""
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    url = f"{base.rstrip('/')}{path}" + (f"?{query}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=10) as reply:
            return json.load(reply)
    except urllib.error.HTTPError as exc:
        if exc.code in (400, 404):
            return json.load(exc)
        raise WorkerUnreachable(f"{url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise WorkerUnreachable(f"no worker answers at {base} ({exc})") from None


def cell(name: str, value: Any) -> str:
    """`value` of KPI `name` in its unit; "-" when absent."""
    if value is None:
        return "-"
    shown = KPIS.get(name) or WINDOW_KPIS.get(name)
    if shown is None or not isinstance(value, int | float):
        return str(value)
    return shown.format(value)


def _plain(content: Any) -> str:
    return content.plain if isinstance(content, Text) else str(content)


def needed_width(table: Table) -> int:
    """The narrowest width `table` prints at with nothing cut: every `no_wrap` column as wide
    as its widest line (header included), a folding one (long words broken over lines) its
    `min_width`, every other one its longest word or its `min_width`; plus borders and
    padding."""
    widths = []
    for column in table.columns:
        texts = [_plain(column.header), *(_plain(c) for c in column.cells)]
        if column.overflow == "fold" and not column.no_wrap:
            width = column.min_width or 1
        elif column.no_wrap:
            width = max(cell_len(line) for text in texts for line in text.splitlines() or [""])
        else:
            words = [word for text in texts for word in text.split()] or [""]
            width = max(column.min_width or 0, *(cell_len(word) for word in words))
        widths.append(width)
    return sum(widths) + len(widths) * 3 + 1  # padding 1 each side, a border between and round


def fits(table: Table, console: Console) -> bool:
    """Whether `table` prints at the console's width without cutting a number or a label."""
    return needed_width(table) <= console.width


def window_kpis(every_row: dict[str, Any], window: str) -> dict[str, float]:
    """Churn and SCI of `window` from a /kpi/all answer (empty when the worker has none)."""
    out: dict[str, float] = {}
    for row in every_row.get("rows", []):
        if row.get("window") == window and row.get("kind") in ("churn", "sci"):
            out |= row.get("kpis", {})
    return out


def segment_table(
    answer: dict[str, Any], title: str, extra: dict[str, float] | None = None
) -> Table:
    """One segment's KPIs (and the window's churn and SCI in `extra`), one per row."""
    table = Table(title=title)
    table.add_column("KPI (unit)")
    table.add_column("value", justify="right", no_wrap=True)
    kpis = answer.get("kpis", {})
    for name, shown in KPIS.items():
        if name in kpis:
            table.add_row(shown.label, cell(name, kpis[name]))
    extra = extra or {}
    for name, shown in WINDOW_KPIS.items():
        if name in extra:
            table.add_row(f"{shown.label}, all queues", cell(name, extra[name]))
    return table


RANKING_COLUMNS = ("nps", "csat_top_box_ratio", "csat_top2_box_ratio", "ces_average")
RANKING_HEADERS = {"nps": "NPS\n-100..100", "csat_top_box_ratio": "CSAT\ntop box\n%",
                   "csat_top2_box_ratio": "CSAT\ntop-2\n%", "ces_average": "CES\n1..7"}  # fmt: skip


def _label(row: dict[str, Any]) -> str:
    return str(row.get("agent_id") or f"{row.get('channel')}/{row.get('queue')}")


def _interval(row: dict[str, Any], sort: str) -> str:
    interval = row.get("interval")
    if not interval:
        return "-"
    name = SORTS[sort]
    return f"{cell(name, interval[0])}..{cell(name, interval[1])}"


def ranking_table(answer: dict[str, Any], who: str, sort: str, title: str) -> Table:
    """Agents or queues, one per row: n (answers to the sorted KPI), the 95% interval of the
    sorted KPI (NPS, CSAT top-2) and their KPIs in their units."""
    table = Table(title=title)
    table.add_column(who, no_wrap=True)
    table.add_column("n", justify="right", no_wrap=True)
    for name in RANKING_COLUMNS:
        table.add_column(RANKING_HEADERS[name], justify="right", no_wrap=True)
    if sort in ("nps", "csat_top2"):
        table.add_column(f"{QUESTIONS[sort]}\n95% CI", justify="right", no_wrap=True)
    for row in answer.get("rows", []):
        kpis = row.get("kpis", {})
        cells = [_label(row), count(row["n"]), *(cell(n, kpis.get(n)) for n in RANKING_COLUMNS)]
        if sort in ("nps", "csat_top2"):
            cells.append(_interval(row, sort))
        table.add_row(*cells)
    return table


def ranking_blocks(answer: dict[str, Any], who: str, sort: str, title: str) -> list[Text]:
    """The ranking one record per block, for a terminal too narrow for its table."""
    blocks = [Text(title, style="italic")]
    for row in answer.get("rows", []):
        kpis = row.get("kpis", {})
        block = Text().append(f"{who} {_label(row)}  (n {count(row['n'])})", style="bold")
        for name in RANKING_COLUMNS:
            block.append(f"\n  {KPIS[name].label}: {cell(name, kpis.get(name))}")
        if sort in ("nps", "csat_top2"):
            block.append(f"\n  95% interval of {KPIS[SORTS[sort]].label}: {_interval(row, sort)}")
        blocks.append(block)
    return blocks


def print_ranking(
    console: Console, answer: dict[str, Any], who: str, sort: str, title: str
) -> None:
    table = ranking_table(answer, who, sort, title)
    renderables: list[RenderableType] = (
        [table] if fits(table, console) else list(ranking_blocks(answer, who, sort, title))
    )
    for renderable in renderables:
        console.print(renderable)


def why_empty(who: str, sort: str, window: str, min_n: int, channel: str | None) -> str:
    where = f" of channel {channel}" if channel else ""
    return (
        f"no {who}{where} with at least {min_n} answers to {QUESTIONS[sort]} over "
        f"{window} on this worker: lower --min-n, or pick a longer --window"
    )
