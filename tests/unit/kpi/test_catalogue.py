"""The KPI catalogue is the one list of KPIs: gauge names are unique, the rows' KPIs are
exactly the catalogue's gauges, each KPI reads only the summary slots it declares, and the
exporter's gauges and help texts come from it."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from stream.exporter import KpiCollector, collector
from stream.kpi import catalogue, report
from stream.kpi import summary as s
from stream.kpi.rows import KpiRow

ANSWERED = [1.0] * s.SIZE  # every slot non-zero: every KPI has answers


def test_gauge_names_are_unique_and_every_slot_is_read() -> None:
    names = [g.name for g in catalogue.SEGMENT_GAUGES]
    assert len(names) == len(set(names))
    read = {slot for kpi in catalogue.KPIS for slot in kpi.slots}
    # SCI and lifecycle slots feed the customers' SCI and churn, not a segment gauge
    others = {s.ACTIVATIONS, s.CANCELLATIONS, s.SCI_SUM, s.SCI_N}
    assert read | others == set(range(s.SIZE))


def test_a_rows_kpis_are_the_catalogues_gauges() -> None:
    assert list(report.kpis(ANSWERED)) == [g.name for g in catalogue.SEGMENT_GAUGES]


vectors = st.lists(st.integers(0, 50).map(float), min_size=s.SIZE, max_size=s.SIZE)


@given(vectors, st.integers(0, s.SIZE - 1), st.integers(1, 50))
def test_each_kpi_reads_only_its_slots(vector: list[float], slot: int, extra: int) -> None:
    changed = list(vector)
    changed[slot] += extra
    for kpi in catalogue.KPIS:
        if slot not in kpi.slots:
            assert kpi.of(changed) == kpi.of(vector), (kpi.name, slot)


def test_the_exporter_takes_names_and_help_from_the_catalogue() -> None:
    registry = CollectorRegistry()
    rows = [
        KpiRow("1h", "q", report.kpis(ANSWERED), ANSWERED, channel="all", queue="all"),
        KpiRow("1h", "a", report.kpis(ANSWERED), ANSWERED, agent_id="agent-1"),
    ]
    registry.register(KpiCollector(lambda: rows))
    text = generate_latest(registry).decode()
    for gauge in catalogue.SEGMENT_GAUGES:
        assert f"# HELP cx_{gauge.name} {gauge.help}\n" in text
    agent_metrics = {line.split("{")[0] for line in text.splitlines() if "agent_id=" in line}
    assert agent_metrics == {g.agent_metric for g in catalogue.AGENT_GAUGES}


def test_a_row_as_json_shows_its_segments_fields_only() -> None:
    row = KpiRow("5m", "a", {"nps": 10.0}, [1.0], agent_id="agent-7")
    assert row.as_dict() == {"window": "5m", "kind": "a", "agent_id": "agent-7",
                             "kpis": {"nps": 10.0}, "vector": [1.0]}  # fmt: skip
    assert "vector" not in row.as_dict(vector=False)
    assert row.label == "agent-7"


def test_a_scrape_computes_the_kpis_of_the_exported_queues_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def queue(name: str, n: int) -> KpiRow:
        vector = s.initialize()
        vector[s.N] = vector[s.NPS + 10] = n
        return KpiRow("1h", "q", None, vector, channel="sms", queue=name)

    computed: list[float] = []
    original = report.kpis

    def kpis(vector: list[float]) -> dict[str, float]:
        computed.append(vector[s.N])
        return original(vector)

    monkeypatch.setattr(collector.report, "kpis", kpis)
    rows = [queue(f"q{i}", 100 - i) for i in range(10)]
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: rows, queue_top_k=2))
    text = generate_latest(registry).decode()
    assert 'cx_nps_responses{channel="sms",queue="other",window="1h"} ' in text
    # q0 and q1, then "other" once: the other eight were folded by their vectors.
    assert computed == [100, 99, sum(range(91, 99))]
