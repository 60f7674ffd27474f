"""monitoring/config.yml, validated: the thresholds and gates every generated file reads."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

HERE = Path(__file__).resolve().parent
CONFIG = HERE / "config.yml"
Window = Literal["5m", "1h", "24h", "7d"]
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d|w)")


def seconds(duration: str) -> float:
    """A Prometheus duration ("1h30m", "15s") in seconds."""
    parts = _DURATION.findall(duration)
    if not parts or "".join(n + u for n, u in parts) != duration:
        raise ValueError(f"not a Prometheus duration: {duration!r}")
    return sum(int(n) * _UNITS[u] for n, u in parts)


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Target(_Section):
    target: float
    window: Window
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class Csat(Target):
    ratio: Literal["top_box", "top2_box"]


class NpsDrop(_Section):
    window: Window
    baseline: Window
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class InputStall(_Section):
    range: str = Field(pattern=_DURATION.pattern + "+")
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class DeadLetters(_Section):
    ratio: float = Field(gt=0, lt=1)
    min_messages: int = Field(ge=1)
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class ConsumerLag(_Section):
    messages: int = Field(ge=1)
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class SnapshotStale(_Section):
    age: str = Field(pattern=_DURATION.pattern + "+")
    for_: str = Field(alias="for", pattern=_DURATION.pattern + "+")


class Config(_Section):
    job: str
    runbook_url: str
    min_responses: int = Field(ge=1)
    nps: Target
    csat: Csat
    nps_drop: NpsDrop
    churn: Target
    input_stall: InputStall
    dead_letters: DeadLetters
    consumer_lag: ConsumerLag
    snapshot_stale: SnapshotStale

    @property
    def job_selector(self) -> str:
        return f'job="{self.job}"'

    def runbook(self, alert: str) -> str:
        return f"{self.runbook_url}#{alert.lower()}"

    def override(self, changes: dict[str, Any]) -> Config:
        """A copy with `changes` merged in, section by section, e.g.
        override({"nps": {"for": "20s"}}): the end-to-end tests' short durations."""
        data = self.model_dump(by_alias=True)
        for key, value in changes.items():
            data[key] = {**data[key], **value} if isinstance(value, dict) else value
        return Config.model_validate(data)


def load(path: Path = CONFIG) -> Config:
    return Config.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")))
