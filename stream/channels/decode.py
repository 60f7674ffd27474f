"""Bytes -> typed struct, turning every failure into a Rejected with a PII-free detail."""

from __future__ import annotations

import re
from typing import TypeVar

import msgspec

from stream.channels.outcome import Reason, Rejected

T = TypeVar("T")

# msgspec quotes offending values in some messages (e.g. "Invalid enum value 'x'") with repr(),
# which may hold both quote characters and escaped ones; so everything from the first quote up to
# the path suffix is dropped, rather than trying to match the closing quote.
_QUOTED = re.compile(r"['\"].*", re.DOTALL)
_PATH = re.compile(r" - at `(\$[^`]*)`$")


def _classify(message: str) -> str:
    if message.startswith("Object missing required field"):
        return Reason.MISSING_FIELD
    if message.startswith("Expected `object`") and " - at `" not in message:
        return Reason.NOT_OBJECT
    if re.match(r"Expected `[^`]+` (of length )?[<>]=? ?-?\d", message):
        return Reason.OUT_OF_RANGE
    if message.startswith("Expected `") and ", got `" in message:
        return Reason.WRONG_TYPE
    return Reason.INVALID_VALUE


def safe_detail(message: str) -> str:
    """A validation message with every quoted input value removed, capped in length."""
    path = _PATH.search(message)
    head, tail = (message[: path.start()], path.group(0)) if path else (message, "")
    return (_QUOTED.sub("'…'", head) + tail)[:200]


def decode(raw: bytes, type_: type[T], max_bytes: int) -> T | Rejected:
    """Decode one JSON message into `type_`; never raises."""
    if len(raw) > max_bytes:
        return Rejected(Reason.OVERSIZED, f"message is {len(raw)} bytes, limit {max_bytes}")
    # Checked up front: msgspec does not validate the strings of skipped (unknown) fields, and
    # reports a bad byte in a known one as a bare UnicodeDecodeError.
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return Rejected(Reason.NOT_UTF8, "message is not valid UTF-8")
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        message = str(exc)
        return Rejected(_classify(message), safe_detail(message))
    except msgspec.DecodeError:
        return Rejected(Reason.NOT_JSON, "message is not a JSON document")
    except (RecursionError, ValueError, OverflowError):
        return Rejected(Reason.NOT_JSON, "message could not be decoded")
