"""YAML text of the generated files: block scalars for expressions, comments kept."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml


class _Dumper(yaml.SafeDumper):
    pass


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, width=1000, allow_unicode=True)


def comment(text: str, indent: str = "") -> str:
    return "".join(f"{indent}# {line}".rstrip() + "\n" for line in textwrap.wrap(text, 94))


def header(lines: str) -> str:
    return "".join(f"# {line}".rstrip() + "\n" for line in lines.strip("\n").splitlines())


def item(data: Any, indent: str) -> str:
    """`data` as one item of a YAML list at `indent`."""
    body = textwrap.indent(dump(data), indent + "  ")
    return indent + "- " + body[len(indent) + 2 :]


def rule_groups(groups: dict[str, list[dict[str, Any]]], notes: dict[str, str]) -> str:
    out = ["groups:\n"]
    for name, rules in groups.items():
        out.append(f"  - name: {name}\n    rules:\n")
        for rule in rules:
            key = rule.get("record") or rule.get("alert")
            if key in notes:
                out.append(comment(notes[key], "      "))
            out.append(item(rule, "      "))
    return "".join(out)
