"""`python -m stream COMMAND`: Faust's CLI (worker, ...) plus the project's commands."""

from __future__ import annotations

from stream import commands  # registers the project's commands on the app
from stream.worker import app


def main() -> None:
    commands.tidy_cli()
    app.main()


if __name__ == "__main__":
    main()
