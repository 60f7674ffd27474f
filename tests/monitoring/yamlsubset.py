"""A reader for the block-style YAML of monitoring/ (PyYAML is not a dependency of the project).

It covers what the Prometheus, Alertmanager, Grafana-provisioning and promtool files there use,
and what `docker-compose config` prints: nested block mappings and sequences (`- key: value`
items included), plain, 'single' and "double" quoted scalars, the block scalars `|`, `|-`,
`>` and `>-`, flow sequences of scalars (`[a, 'b']`), `{}`, and comments. Anything else (anchors,
tags, flow mappings, multi-line quoted strings) raises YamlError instead of being misread, so a
file that drifts out of this subset makes the tests fail loudly; promtool and Grafana remain the
judges of the files themselves.
"""

from __future__ import annotations

import json
import re
from typing import Any


class YamlError(ValueError):
    pass


_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")
_BLOCK_SCALAR = re.compile(r"([|>])([-+]?)")


def loads(text: str) -> Any:
    return _Parser(text).document()


def _strip_comment(text: str) -> str:
    """`text` without a trailing ` # comment` (outside quotes)."""
    quote = ""
    i = 0
    while i < len(text):
        char = text[i]
        if quote:
            if quote == '"' and char == "\\":
                i += 1
            elif char == quote:
                if quote == "'" and text[i + 1 : i + 2] == "'":
                    i += 1
                else:
                    quote = ""
        elif char in "'\"" and (i == 0 or text[i - 1] in " \t[,:"):
            quote = char
        elif char == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
        i += 1
    return text.rstrip()


def _quoted_end(text: str) -> int:
    """Index just past the quoted scalar that `text` starts with."""
    quote = text[0]
    i = 1
    while i < len(text):
        if quote == '"' and text[i] == "\\":
            i += 2
            continue
        if text[i] == quote:
            if quote == "'" and text[i + 1 : i + 2] == "'":
                i += 2
                continue
            return i + 1
        i += 1
    raise YamlError(f"unterminated quoted scalar (multi-line quoted scalars unsupported): {text!r}")


def _unquote(text: str) -> str:
    if text[0] == "'":
        return text[1:-1].replace("''", "'")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise YamlError(f"unsupported double-quoted scalar {text!r}: {error}") from error
    assert isinstance(value, str)
    return value


def _scalar(text: str) -> Any:
    text = text.strip()
    if not text:
        return None
    if text[0] in "'\"":
        end = _quoted_end(text)
        if text[end:].strip():
            raise YamlError(f"text after a quoted scalar: {text!r}")
        return _unquote(text)
    if text[0] in "&*!|>%@`":
        raise YamlError(f"unsupported YAML construct: {text!r}")
    if text == "{}":
        return {}
    if text[0] == "{":
        raise YamlError(f"flow mappings are not supported: {text!r}")
    if text[0] == "[":
        if not text.endswith("]"):
            raise YamlError(f"multi-line flow sequences are not supported: {text!r}")
        return _flow_sequence(text[1:-1])
    if text in ("null", "~", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def _flow_sequence(body: str) -> list[Any]:
    items: list[Any] = []
    rest = body.strip()
    while rest:
        if rest[0] in "'\"":
            end = _quoted_end(rest)
            items.append(_unquote(rest[:end]))
            rest = rest[end:].strip()
        else:
            if rest[0] in "[{":
                raise YamlError(f"nested flow collections are not supported: [{body}]")
            item, _, _ = rest.partition(",")
            items.append(_scalar(item))
            rest = rest[len(item) :].strip()
        if rest.startswith(","):
            rest = rest[1:].strip()
        elif rest:
            raise YamlError(f"malformed flow sequence: [{body}]")
    return items


def _split_key(content: str) -> tuple[str, str] | None:
    """(key, rest) when `content` is `key: rest` or `key:`; None for a plain scalar."""
    if content[0] in "'\"":
        end = _quoted_end(content)
        after = content[end:]
        if after.startswith(":") and (len(after) == 1 or after[1] in " \t"):
            return _unquote(content[:end]), after[1:].strip()
        return None
    match = re.search(r":(?:[ \t]|$)", content)
    if match is None or content[0] in "[{":
        return None
    key = content[: match.start()].strip()
    if not key or " #" in key:
        return None
    return key, content[match.end() :].strip()


class _Parser:
    def __init__(self, text: str) -> None:
        # (indent, content) of every raw line; content keeps comments until read.
        self.lines = [(len(raw) - len(raw.lstrip(" ")), raw.strip()) for raw in text.splitlines()]
        for number, raw in enumerate(text.splitlines(), 1):
            if raw[: len(raw) - len(raw.lstrip())].count("\t"):
                raise YamlError(f"tab in the indentation of line {number}")
        self.i = 0

    # -- line navigation ----------------------------------------------------------------------

    def skip(self) -> None:
        while self.i < len(self.lines):
            content = self.lines[self.i][1]
            if content and not content.startswith("#") and content not in ("---", "..."):
                return
            self.i += 1

    def peek(self) -> tuple[int, str] | None:
        self.skip()
        if self.i >= len(self.lines):
            return None
        indent, content = self.lines[self.i]
        return indent, _strip_comment(content)

    @staticmethod
    def is_item(content: str) -> bool:
        return content == "-" or content.startswith("- ")

    # -- structure ----------------------------------------------------------------------------

    def document(self) -> Any:
        first = self.peek()
        if first is None:
            return None
        value = self.block(first[0])
        rest = self.peek()
        if rest is not None:
            raise YamlError(f"unparsed YAML from line {self.i + 1}: {rest[1]!r}")
        return value

    def block(self, indent: int) -> Any:
        line = self.peek()
        assert line is not None
        if self.is_item(line[1]):
            return self.sequence(indent)
        if _split_key(line[1]) is None:
            self.i += 1
            return self.plain(line[1], indent - 1)
        return self.mapping(indent)

    def sequence(self, indent: int) -> list[Any]:
        items: list[Any] = []
        while (line := self.peek()) is not None:
            line_indent, content = line
            if line_indent < indent or not self.is_item(content):
                break
            if line_indent > indent:
                raise YamlError(f"bad indentation at line {self.i + 1}: {content!r}")
            rest = content[1:].lstrip()
            if not rest:
                self.i += 1
                items.append(self.nested(indent, same_indent_sequence=False))
                continue
            column = indent + len(content) - len(rest)
            if _split_key(rest) is not None or self.is_item(rest):
                # `- key: value` opens a mapping (`- - x` a sequence) at the column of its text.
                self.lines[self.i] = (column, self.lines[self.i][1][len(content) - len(rest) :])
                items.append(self.block(column))
            else:
                self.i += 1
                items.append(self.value(rest, indent))
        return items

    def mapping(self, indent: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while (line := self.peek()) is not None:
            line_indent, content = line
            if line_indent < indent or (line_indent == indent and self.is_item(content)):
                break
            split = _split_key(content)
            if line_indent > indent or split is None:
                raise YamlError(f"unexpected YAML at line {self.i + 1}: {content!r}")
            key, rest = split
            if key in result:
                raise YamlError(f"duplicate key {key!r} at line {self.i + 1}")
            self.i += 1
            if rest:
                result[key] = self.value(rest, indent)
            else:
                result[key] = self.nested(indent, same_indent_sequence=True)
        return result

    def nested(self, indent: int, *, same_indent_sequence: bool) -> Any:
        """The value of a `key:` or `-` line with nothing after it."""
        line = self.peek()
        if line is None:
            return None
        next_indent, content = line
        if next_indent > indent:
            return self.block(next_indent)
        if same_indent_sequence and next_indent == indent and self.is_item(content):
            return self.sequence(indent)
        return None

    # -- scalars ------------------------------------------------------------------------------

    def value(self, rest: str, indent: int) -> Any:
        """The value written after `key:` or `-` on a line at `indent`."""
        match = _BLOCK_SCALAR.fullmatch(rest)
        if match:
            return self.block_scalar(match[1], match[2], indent)
        return self.plain(rest, indent)

    def plain(self, first: str, indent: int) -> Any:
        """A scalar, with the continuation lines of a multi-line plain scalar folded in."""
        parts = [first]
        while (line := self.peek()) is not None and line[0] > indent:
            if first[0] in "'\"[{":
                raise YamlError(f"multi-line quoted or flow scalar at line {self.i + 1}")
            parts.append(line[1])
            self.i += 1
        return _scalar(" ".join(parts))

    def block_scalar(self, style: str, chomping: str, indent: int) -> str:
        lines: list[str] = []
        content_indent: int | None = None
        while self.i < len(self.lines):
            line_indent, content = self.lines[self.i]
            if content:
                if content_indent is None:
                    content_indent = line_indent
                if line_indent < content_indent or line_indent <= indent:
                    break
                lines.append(" " * (line_indent - content_indent) + content)
            else:
                lines.append("")
            self.i += 1
        trailing = 0
        while lines and lines[-1] == "":
            lines.pop()
            trailing += 1
        if style == "|":
            text = "\n".join(lines)
        else:
            text = ""
            for previous, line in zip([None, *lines], lines, strict=False):
                if previous is None:
                    text = line
                elif line == "" or previous == "":
                    text += "\n" if line == "" else line
                else:
                    text += " " + line
        if not lines:
            return ""
        if chomping == "-":
            return text
        if chomping == "+":
            return text + "\n" * (1 + trailing)
        return text + "\n"
