"""Stored summary vectors carry their layout version: records from before the version was
recorded read as layout 1, an older layout is padded to the current one, and a newer layout
than this code knows is refused with its reason (never misread)."""

from __future__ import annotations

import msgspec
import pytest

from stream.aggregation.messages import BucketState
from stream.aggregation.parts import Part
from stream.kpi import summary

encode = msgspec.msgpack.encode
decode_state = msgspec.msgpack.Decoder(BucketState).decode
decode_part = msgspec.msgpack.Decoder(Part).decode


def test_a_record_without_a_layout_is_layout_1() -> None:
    vector = summary.initialize()
    vector[summary.N] = 3
    old = encode([vector, {"t:0": 7}, {}])  # as written before layouts were recorded
    state = decode_state(old)
    assert state.layout == summary.LAYOUT == 1
    assert state.vector == vector and state.applied == {"t:0": 7}


def test_a_new_state_records_the_current_layout() -> None:
    state = BucketState(summary.initialize(), {})
    assert msgspec.msgpack.decode(encode(state))[-1] == summary.LAYOUT


def test_an_older_layout_is_padded_and_other_vectors_are_left_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    old_size = summary.SIZE
    monkeypatch.setattr(summary, "LAYOUT", 2)
    monkeypatch.setattr(summary, "SIZE", old_size + 2)
    monkeypatch.setattr(summary, "LAYOUT_SIZES", {1: old_size, 2: old_size + 2})
    member = [1.0] * old_size
    state = decode_state(encode([[], {}, {"agent-1": member}, 1]))
    assert state.members["agent-1"] == [1.0] * old_size + [0, 0]
    assert state.layout == 2
    customer = decode_state(encode([[2.5, 3.0], {}, {}, 1]))  # a customer's [sum, n]
    assert customer.vector == [2.5, 3.0]


def test_a_newer_layout_is_refused_with_its_reason() -> None:
    newer = encode([[*summary.initialize(), 0, 0], {}, {}, summary.LAYOUT + 1])
    with pytest.raises(msgspec.ValidationError, match="summary layout 2; this worker knows"):
        decode_state(newer)
    part = encode([0, 1.0, [1, 2, 3, 4], {}, {}, summary.LAYOUT + 1])
    with pytest.raises(msgspec.ValidationError, match="run the newer worker, or reset"):
        decode_part(part)
