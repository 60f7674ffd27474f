"""Ctrl-C on a worker without mode's `-INT-` line."""

from __future__ import annotations

import signal

import mode


def hush_sigint(worker: mode.Worker) -> None:
    """Ctrl-C stops the command as before, without mode's `-INT- -INT- ...` line on stderr
    (mode's handler prints it, then schedules the same shutdown)."""

    def on_sigint() -> None:
        worker._schedule_shutdown(signal.SIGINT)

    # mode installs its signal handlers when the worker starts, after this: they take this one
    setattr(worker, "_on_sigint", on_sigint)  # noqa: B010 (a method, for mypy)
