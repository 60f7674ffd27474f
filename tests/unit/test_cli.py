"""`python -m stream`: the project's commands only, each with a description and an example;
Kafka errors end a command in one line with exit code 3, usage errors with 2; Ctrl-C without
noise; `kpi`'s tables in 80 columns, its --json, its empty answers; the data dir follows the
cwd."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stream.commands import EXAMPLES, FAUST_INTERNAL
from stream.settings import Settings
from tests.support.fakehttp import FakeServer
from tests.support.worker import free_port

PROJECT = {"worker", "kafka", "topics", "simulate", "demo", "replay", "deadletters", "kpi"}


def run(*args: str, cwd: Path | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "COLUMNS": "100", **env}
    return subprocess.run(
        [sys.executable, "-m", "stream", *args],
        capture_output=True, text=True, timeout=60, env=environment, cwd=cwd, check=False,
    )  # fmt: skip


def listed_commands(help_text: str) -> dict[str, str]:
    section = help_text.split("Commands:", 1)[1]
    rows = [line.split(None, 1) for line in section.splitlines() if line.startswith("  ")]
    return {row[0]: row[1] if len(row) > 1 else "" for row in rows if not row[0].startswith("-")}


@pytest.fixture(scope="module")
def main_help() -> str:
    result = run("--help")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_help_lists_the_projects_commands_only(main_help: str) -> None:
    listed = listed_commands(main_help)
    assert set(listed) >= PROJECT
    assert not set(listed) & FAUST_INTERNAL, "Faust's internal commands are hidden"
    assert set(listed) <= PROJECT | {"kpi"}, f"unexpected: {set(listed) - PROJECT}"
    assert "Welcome" not in main_help and "cx-stream" in main_help


def test_each_command_has_a_one_line_description(main_help: str) -> None:
    for name, description in listed_commands(main_help).items():
        assert description and "..." not in description, name
        assert len(description) <= 60, (name, description)


@pytest.mark.parametrize("name", sorted(PROJECT))
def test_every_commands_help_ends_with_an_example(name: str) -> None:
    result = run(name, "--help")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip().splitlines()
    assert lines[-2].strip() == "Example:"
    assert lines[-1].strip().startswith(f"python -m stream {name}")
    assert EXAMPLES[name].split("#")[0].strip() == lines[-1].split("#")[0].strip()


def test_hidden_faust_commands_still_run() -> None:
    assert run("tables", "--help").returncode == 0


def unreachable() -> str:
    return f"127.0.0.1:{free_port()}"  # nothing listens there


@pytest.mark.parametrize(
    "args",
    [
        ("simulate", "--duration", "5"),
        ("topics",),
        ("deadletters", "--limit", "3"),
    ],
)
def test_kafka_errors_end_a_command_in_one_line_and_exit_3(args: tuple[str, ...]) -> None:
    address = unreachable()
    result = run(*args, KAFKA_BOOTSTRAP_SERVERS=address)
    output = (result.stdout + result.stderr).strip().splitlines()
    assert result.returncode == 3, result.stdout + result.stderr
    assert len(output) == 1, output
    assert output[0].startswith(f"error: Kafka unreachable or failing at {address}")
    assert "Traceback" not in result.stderr


def test_the_default_data_dir_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    default = Settings.model_fields["data_dir"].default
    assert default == Path("var/worker") and not default.is_absolute()
    os.chdir(tmp_path)
    try:
        assert Settings().data_dir.resolve() == tmp_path / "var" / "worker"
    finally:
        os.chdir(Path(__file__).parents[2])


# --- errors and help ----------------------------------------------------------------------------


def test_a_bad_since_is_a_usage_error_without_traceback() -> None:
    result = run("deadletters", "--since", "yesterday", COLUMNS="80")
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert errors == [
        "Error: Invalid value for '--since': 'yesterday' is neither a duration (30m, 24h, 7d) "
        "nor an RFC 3339 time (2025-01-15T12:00Z)"
    ]


def test_a_missing_replay_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run("replay", str(tmp_path / "missing.jsonl"))
    assert result.returncode == 2, result.stderr  # as the README says
    assert "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_help_hides_fausts_inapplicable_options(main_help: str) -> None:
    for hidden in ("--console-port", "--blocking-timeout", "--loop", "--datadir", "--workdir",
                   "--debug", "--app", "--json"):  # fmt: skip
        assert hidden not in main_help, hidden
    assert "--loglevel" in main_help and "--version" in main_help
    worker_help = run("worker", "--help").stdout
    assert "--console-port" not in worker_help and "--web-port" in worker_help


def test_ctrl_c_stops_a_command_without_int_noise() -> None:
    with socket.socket() as silent:  # accepts connections, never answers: the command waits
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": f"127.0.0.1:{silent.getsockname()[1]}"}
        process = subprocess.Popen(
            [sys.executable, "-m", "stream", "deadletters"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        time.sleep(5)
        assert process.poll() is None, "still waiting for the silent broker"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    assert "-INT-" not in out + err, out + err
    assert "Traceback" not in err, err


# --- kpi against a fake worker -----------------------------------------------------------------

SEGMENT = {
    "window": "1h", "kind": "q", "channel": "all", "queue": "all",
    "kpis": {"nps": 12.3456, "nps_lower": 4.5, "nps_upper": 20.25, "nps_responses": 1325,
             "csat_top_box_ratio": 0.3712, "csat_top2_box_ratio": 0.7849, "csat_responses": 1211,
             "ces_average": 5.1234, "ces_responses": 900, "thumbs_up_ratio": 0.81,
             "csi": -0.4567, "acsi_index": 71.25, "response_ratio": 0.4321},
}  # fmt: skip
EVERY_ROW = {"rows": [
    SEGMENT,
    {"window": "1h", "kind": "churn", "kpis": {"churn_ratio": 0.0125, "churn_cancelled": 25,
                                               "churn_active_at_start": 2000}},
    {"window": "7d", "kind": "churn", "kpis": {"churn_ratio": 0.5}},
    {"window": "1h", "kind": "sci", "kpis": {"sci_secure_ratio": 0.2712,
                                             "sci_customers_secure": 271}},
]}  # fmt: skip


def agent(name: str, nps: float, n: int) -> dict[str, object]:
    kpis = {"nps": nps, "nps_responses": n, "csat_top_box_ratio": 0.5, "csat_top2_box_ratio": 0.75,
            "ces_average": 4.5}  # fmt: skip
    return {"window": "1h", "agent_id": name, "sort": "nps", "value": nps, "n": n,
            "interval": [nps - 10, nps + 10], "kpis": kpis}  # fmt: skip


AGENTS = {"rows": [agent("agent-0001", -12.5, 123_456),
                   agent("agent-0002", 33.333, 45)]}  # fmt: skip


@pytest.fixture
def fake_worker() -> Iterator[FakeServer]:
    answers = {"/kpi": SEGMENT, "/kpi/all": EVERY_ROW, "/kpi/agents": AGENTS,
               "/kpi/queues": {"rows": []}}  # fmt: skip
    with FakeServer({path: (200, body) for path, body in answers.items()}) as fake:
        yield fake


def narrow(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), result.stdout
    assert "…" not in result.stdout, "nothing cut"
    return result.stdout


def test_kpi_shows_every_kpi_with_its_unit_and_churn_and_sci_in_80_columns(
    fake_worker: FakeServer,
) -> None:
    out = narrow(run("kpi", "--url", fake_worker.url, COLUMNS="80"))
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip()
            for line in out.splitlines() if line.count("│") == 3}  # fmt: skip
    assert rows == {
        "NPS (-100..100)": "12.3", "NPS 95% lower bound": "4.5", "NPS 95% upper bound": "20.2",
        "NPS answers": "1,325", "CSAT top box (%)": "37.1", "CSAT top-2 box (%)": "78.5",
        "CSAT answers": "1,211", "CES average (1..7)": "5.12", "CES answers": "900",
        "thumbs up (%)": "81.0", "CSI (-9..9)": "-0.46", "ACSI (0..100)": "71.2",
        "response ratio (%)": "43.2", "churn (%), all queues": "1.2",
        "churn: customers cancelled, all queues": "25",
        "churn: customers active at start, all queues": "2,000",
        "SCI secure (%), all queues": "27.1", "SCI customers secure, all queues": "271",
    }  # fmt: skip


def test_kpi_json_is_the_workers_answer_with_the_windows_churn_and_sci(
    fake_worker: FakeServer,
) -> None:
    result = run("kpi", "--url", fake_worker.url, "--json", COLUMNS="40")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # whole, though the terminal is 40 columns wide
    assert document["kpis"] == SEGMENT["kpis"]
    assert document["window_kpis"] == {"churn_ratio": 0.0125, "churn_cancelled": 25,
                                       "churn_active_at_start": 2000, "sci_secure_ratio": 0.2712,
                                       "sci_customers_secure": 271}  # fmt: skip
    ranked = run("kpi", "--url", fake_worker.url, "--agents", "worst", "--json")
    assert json.loads(ranked.stdout) == AGENTS and ranked.returncode == 0


def test_a_ranking_keeps_every_number_in_80_columns(fake_worker: FakeServer) -> None:
    out = narrow(run("kpi", "--url", fake_worker.url, "--agents", "worst", COLUMNS="80"))
    assert "┃" in out, "a table"
    for shown in ("agent-0001", "123,456", "-12.5", "-22.5..-2.5", "50.0", "75.0", "4.50",
                  "agent-0002", "33.3", "23.3..43.3"):  # fmt: skip
        assert shown in out, (shown, out)
    assert "value" not in out, "no column repeating the sorted KPI"
    assert "/kpi/agents?window=1h&sort=nps&min_n=30&limit=10&order=asc" in fake_worker.queries


def test_a_ranking_falls_back_to_one_block_per_row_when_too_narrow(
    fake_worker: FakeServer,
) -> None:
    out = narrow(run("kpi", "--url", fake_worker.url, "--agents", "worst", COLUMNS="60"))
    assert "┃" not in out, "no table"
    assert "agent agent-0001  (n 123,456)" in out
    assert "  NPS (-100..100): -12.5" in out and "  CSAT top-2 box (%): 75.0" in out
    assert "  95% interval of NPS (-100..100): -22.5..-2.5" in out


def test_an_empty_ranking_says_why_and_exits_1(fake_worker: FakeServer) -> None:
    result = run("kpi", "--url", fake_worker.url, "--queues", "best", "--min-n", "100000")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "no queues of channel all with at least 100000 answers to NPS over 1h on this worker: "
        "lower --min-n, or pick a longer --window"
    )


def test_a_segment_without_answers_says_so_and_exits_1(fake_worker: FakeServer) -> None:
    del fake_worker.answers["/kpi"]
    result = run("kpi", "--url", fake_worker.url, "--queue", "nowhere")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.strip() == "error: not found"
