"""The Faust app's web server settings (stream/pipeline/app.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from stream import demo
from stream.pipeline.app import create_app
from stream.settings import KafkaSettings, Settings


def test_the_worker_listens_on_every_interface_by_default(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    assert (app.conf.web_bind, app.conf.web_port) == ("0.0.0.0", 6066)


def test_cx_web_host_chooses_the_interface(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CX_WEB_HOST", "127.0.0.1")
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    assert app.conf.web_bind == "127.0.0.1"


def test_the_demo_worker_listens_on_loopback_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CX_WEB_HOST", raising=False)
    assert demo.web_host() == "127.0.0.1"
    monkeypatch.setenv("CX_WEB_HOST", "0.0.0.0")
    assert demo.web_host() == "0.0.0.0"
