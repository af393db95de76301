"""Versioned envelopes: every way bytes can be wrong gets its own typed error."""

from __future__ import annotations

import msgpack
import pytest

from shared import wire
from shared.errors import MalformedMessage, OversizedMessage, TruncatedMessage, UnknownVersion


def test_round_trip_keeps_schema_version_and_body() -> None:
    data = wire.pack("avdata.Test", 1, {"a": 1, "b": b"\x00\x01"})
    version, body = wire.unpack(data, "avdata.Test", frozenset({1}))
    assert version == 1
    assert body == {"a": 1, "b": b"\x00\x01"}


def test_truncated_envelope_is_named_truncated() -> None:
    data = wire.pack("avdata.Test", 1, {"payload": b"x" * 100})
    with pytest.raises(TruncatedMessage, match="ends early"):
        wire.unpack(data[:-10], "avdata.Test", frozenset({1}))


def test_empty_bytes_are_truncated() -> None:
    with pytest.raises(TruncatedMessage):
        wire.unpack_any(b"")


def test_unknown_version_names_the_version_and_the_known_ones() -> None:
    data = wire.pack("avdata.Test", 7, {})
    with pytest.raises(UnknownVersion, match=r"version 7 .*known: 1, 2"):
        wire.unpack(data, "avdata.Test", frozenset({1, 2}))


@pytest.mark.parametrize(
    ("raw", "match"),
    [
        (msgpack.packb([1, 2, 3]), "is a list"),
        (msgpack.packb({"v": 1, "body": {}}), "no string 'schema'"),
        (msgpack.packb({"schema": "s", "v": "1", "body": {}}), "no integer 'v'"),
        (msgpack.packb({"schema": "s", "v": 1, "body": []}), "no map 'body'"),
        (b"\xc1\xc1\xc1", "not a msgpack envelope"),
        (msgpack.packb({"schema": "s", "v": 1, "body": {}}) + b"\x01", "trailing bytes"),
    ],
)
def test_malformed_envelopes(raw: bytes, match: str) -> None:
    with pytest.raises(MalformedMessage, match=match):
        wire.unpack_any(raw)


def test_wrong_schema_is_malformed() -> None:
    with pytest.raises(MalformedMessage, match=r"expected a 'avdata\.A'"):
        wire.unpack(wire.pack("avdata.B", 1, {}), "avdata.A", frozenset({1}))


def test_oversized_is_refused_before_decoding() -> None:
    with pytest.raises(OversizedMessage, match="exceeds the limit of 10"):
        wire.unpack_any(b"\x00" * 11, max_bytes=10)


def test_field_checks_types_and_rejects_bools_for_numbers() -> None:
    assert wire.field({"x": 3}, "x", float, "S") == 3.0
    with pytest.raises(MalformedMessage, match="missing field 'y'"):
        wire.field({}, "y", int, "S")
    with pytest.raises(MalformedMessage, match="is a bool"):
        wire.field({"x": True}, "x", int, "S")
    with pytest.raises(MalformedMessage, match="is str, expected int"):
        wire.field({"x": "3"}, "x", int, "S")
