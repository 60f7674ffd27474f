"""`python -m stream kpi`: a running worker's KPIs as a rich table (reads its HTTP API)."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from rich.table import Table

SHOWN = ("nps", "nps_lower", "nps_upper", "nps_responses", "csat_top_box_ratio",
         "csat_top2_box_ratio", "csat_responses", "ces_average", "ces_responses",
         "thumbs_up_ratio", "csi", "acsi_index", "response_ratio")  # fmt: skip


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


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return "-" if value is None else str(value)


def segment_table(answer: dict[str, Any], title: str) -> Table:
    table = Table(title=title)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for name in SHOWN:
        if name in answer.get("kpis", {}):
            table.add_row(name, _cell(answer["kpis"][name]))
    return table


def ranking_table(answer: dict[str, Any], who: str, title: str) -> Table:
    table = Table(title=title)
    for column in (who, "n", "value", "95% interval", "NPS", "CSAT top box", "CES"):
        table.add_column(column, justify="left" if column == who else "right")
    for row in answer.get("rows", []):
        kpis = row["kpis"]
        interval = row.get("interval")
        label = row.get("agent_id") or f"{row.get('channel')}/{row.get('queue')}"
        table.add_row(
            str(label), str(row["n"]), _cell(row["value"]),
            "-" if not interval else f"{interval[0]:.1f} .. {interval[1]:.1f}",
            _cell(kpis.get("nps")), _cell(kpis.get("csat_top_box_ratio")),
            _cell(kpis.get("ces_average")),
        )  # fmt: skip
    return table
