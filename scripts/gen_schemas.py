#!/usr/bin/env python
"""Write the JSON Schemas of the v1 topic models into schemas/.

    python scripts/gen_schemas.py            # (re)write schemas/*.v1.json
    python scripts/gen_schemas.py --check    # exit 1 if a file is missing or differs

The schemas are rendered by stream.models.schemas.render_schemas() from the msgspec models.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stream.models.schemas import render_schemas

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "schemas"


def stale_files(out: Path, rendered: dict[str, str]) -> list[str]:
    """The generated files that are missing from `out` or differ from `rendered`."""
    stale = []
    for name, text in sorted(rendered.items()):
        path = out / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            stale.append(name)
    return stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check, exit 1 if stale")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="schema directory")
    args = parser.parse_args(argv)

    rendered = render_schemas()
    stale = stale_files(args.out, rendered)
    if args.check:
        for name in stale:
            print(f"{args.out / name} is out of date", file=sys.stderr)
        if stale:
            print("run: python scripts/gen_schemas.py", file=sys.stderr)
            return 1
        print(f"{len(rendered)} schemas up to date")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    for name in stale:
        # newline="\n": identical bytes on every platform.
        (args.out / name).write_text(rendered[name], encoding="utf-8", newline="\n")
        print(f"wrote {args.out / name}")
    print(f"{len(rendered)} schemas, {len(stale)} changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
