"""`python -m stream`: the project's commands only, each with a description and an example;
Kafka errors end a command in one line with exit code 3; the data dir follows the cwd."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stream.commands import EXAMPLES, FAUST_INTERNAL
from stream.settings import Settings
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
