"""The KPI collector on a fresh registry: names, labels, absence, top-K folding of agents."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from stream.exporter import KpiCollector
from stream.kpi import report, summary
from stream.kpi.nps import contribution as nps_answer
from stream.kpi.rows import KpiRow


def vector(*nps_scores: int) -> list[float]:
    v = summary.initialize()
    for score in nps_scores:
        summary.add(v, [summary.N, 1, *nps_answer(score)])
    return v


def q_row(window: str, channel: str, queue: str, v: list[float]) -> KpiRow:
    return KpiRow(window, "q", report.kpis(v), v, channel=channel, queue=queue)


def agent_row(window: str, agent: str, v: list[float]) -> KpiRow:
    return KpiRow(window, "a", report.kpis(v), v, agent_id=agent)


def scrape(rows: list[KpiRow], top_k: int = 100) -> dict[str, float]:
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: rows, top_k=top_k))
    samples = {}
    for line in generate_latest(registry).decode().splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_segment_gauges_carry_window_channel_queue() -> None:
    samples = scrape([q_row("1h", "sms", "billing", vector(10, 9, 3))])
    labels = '{channel="sms",queue="billing",window="1h"}'
    assert samples[f"cx_nps{labels}"] == 100 * (2 - 1) / 3
    assert samples[f"cx_nps_promoters{labels}"] == 2
    assert samples[f"cx_nps_detractors{labels}"] == 1
    assert samples[f"cx_nps_lower{labels}"] < samples[f"cx_nps{labels}"]


def test_a_kpi_without_answers_is_absent() -> None:
    samples = scrape([q_row("5m", "ivr", "all", vector(8))])
    assert any(name.startswith("cx_nps{") for name in samples)
    assert not any(name.startswith("cx_csat") for name in samples)
    assert not any(name.startswith("cx_ces") for name in samples)
    assert scrape([]) == {}


def test_agents_beyond_top_k_fold_into_other() -> None:
    rows = [agent_row("24h", f"agent-{i}", vector(*([10] * (10 - i)))) for i in range(5)]
    rows.append(agent_row("24h", "agent-low", vector(0, 0)))
    samples = scrape(rows, top_k=2)
    agents = {name for name in samples if name.startswith("cx_agent_nps{")}
    assert agents == {
        'cx_agent_nps{agent_id="agent-0",window="24h"}',
        'cx_agent_nps{agent_id="agent-1",window="24h"}',
        'cx_agent_nps{agent_id="other",window="24h"}',
    }
    # "other" merges the answers of agent-2..4 (8+7+6 promoters) and agent-low (2 detractors)
    assert samples['cx_agent_nps{agent_id="other",window="24h"}'] == 100 * (21 - 2) / 23


def test_churn_and_sci_have_window_labels_only() -> None:
    rows = [
        KpiRow("7d", "churn", {"churn_ratio": 0.04}),
        KpiRow("1h", "sci", {
            "sci_customers_secure": 3, "sci_customers_neutral": 1, "sci_customers_at_risk": 0,
            "sci_secure_ratio": 0.75}),
    ]  # fmt: skip
    samples = scrape(rows)
    assert samples['cx_churn_ratio{window="7d"}'] == 0.04
    assert samples['cx_sci_customers{band="secure",window="1h"}'] == 3
    assert samples['cx_sci_secure_ratio{window="1h"}'] == 0.75


def test_queues_beyond_top_k_fold_into_other_with_the_states_other() -> None:
    rows = [q_row("1h", "sms", "all", vector(10, 10, 0, 5, 9, 9, 1))]
    rows += [q_row("1h", "sms", f"q{i}", vector(*[9] * (10 - i))) for i in range(4)]
    rows.append(q_row("1h", "sms", "other", vector(0, 0)))  # folded by the state caps
    registry = CollectorRegistry()
    registry.register(KpiCollector(lambda: rows, queue_top_k=2))
    text = generate_latest(registry).decode()
    queues = {
        line.split('queue="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("cx_nps_responses{")
    }
    assert queues == {"all", "q0", "q1", "other"}
    # "other" = q2 (8 answers) + q3 (7) + the state's "other" (2), merged before the KPI.
    assert 'cx_nps_responses{channel="sms",queue="other",window="1h"} 17.0' in text
    assert (
        'cx_nps{channel="sms",queue="other",window="1h"} '
        + str(report.kpis(summary.merge_all([vector(*[9] * 15), vector(0, 0)]))["nps"])
        in text
    )


def test_an_agent_named_other_by_the_state_is_exported_once() -> None:
    rows = [agent_row("5m", "a1", vector(9, 9)), agent_row("5m", "other", vector(0))]
    rows.append(agent_row("5m", "a2", vector(10)))
    samples = scrape(rows, top_k=1)
    others = [k for k in samples if 'agent_id="other"' in k and k.startswith("cx_agent_nps{")]
    assert others == ['cx_agent_nps{agent_id="other",window="5m"}']
    assert (
        samples['cx_agent_nps{agent_id="other",window="5m"}']
        == report.kpis(summary.merge_all([vector(0), vector(10)]))["nps"]
    )
