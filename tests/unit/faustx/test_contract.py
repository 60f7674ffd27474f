"""stream.faustx against faust-streaming's real classes: what it overrides exists with the
signatures it expects, the app gets the project's transport and consumer, and a Faust
without one of those attributes is refused with a clear message."""

from __future__ import annotations

import inspect

import pytest
from faust.transport.consumer import Consumer as FaustConsumer
from faust.transport.drivers import aiokafka as aiokafka_driver

from stream import faustx
from stream.pipeline.app import create_app
from stream.settings import KafkaSettings, Settings


def test_the_installed_faust_passes_the_start_up_check() -> None:
    faustx.check()


@pytest.mark.parametrize(
    "name", ["_wait_next_records", "_new_offset", "seek_to_committed", "wait_empty"]
)
def test_each_override_matches_fausts_signature(name: str) -> None:
    ours = inspect.signature(getattr(faustx.BatchConsumer, name))
    theirs = inspect.signature(getattr(aiokafka_driver.Consumer, name))
    assert list(ours.parameters) == list(theirs.parameters)
    assert inspect.iscoroutinefunction(getattr(faustx.BatchConsumer, name)) == (
        inspect.iscoroutinefunction(getattr(aiokafka_driver.Consumer, name))
    )


def test_the_app_uses_the_batch_transport_and_consumer(tmp_path) -> None:  # type: ignore[no-untyped-def]
    app = create_app(Settings(data_dir=tmp_path), KafkaSettings())
    assert all(url.scheme == faustx.SCHEME for url in app.conf.broker)
    assert isinstance(app.transport, faustx.BatchTransport)
    assert issubclass(app.transport.Consumer, aiokafka_driver.Consumer)
    assert app.transport.Consumer is faustx.BatchConsumer
    assert isinstance(app.batch_router, faustx.BatchRouter)


def test_a_faust_without_an_overridden_method_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(FaustConsumer, "_new_offset")
    with pytest.raises(faustx.IncompatibleFaust, match=r"Consumer\._new_offset is missing"):
        faustx.check()


def test_a_changed_signature_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    async def wait_next(self, timeout_ms):  # type: ignore[no-untyped-def]
        return None

    monkeypatch.setattr(FaustConsumer, "_wait_next_records", wait_next)
    with pytest.raises(faustx.IncompatibleFaust, match="_wait_next_records"):
        faustx.check()


def test_an_unknown_faust_version_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(faustx, "version", lambda name: "0.16.0")
    with pytest.raises(faustx.IncompatibleFaust, match=r"faust-streaming 0\.16\.0"):
        faustx.check()
