"""Versioned msgpack envelopes: the one encoding every contract travels in.

An envelope is a msgpack map ``{"schema": str, "v": int, "body": map}``. Decoding checks each
layer and raises a typed :mod:`shared.errors` error that names what was wrong.
"""

from __future__ import annotations

from typing import Any

import msgpack

from shared.errors import ContractError, MalformedMessage, OversizedMessage, TruncatedMessage, UnknownVersion

#: Largest envelope any decoder accepts unless told otherwise (bytes).
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


def pack(schema: str, version: int, body: dict[str, Any]) -> bytes:
    """Encode ``body`` as a versioned envelope of contract ``schema``."""
    out = msgpack.packb({"schema": schema, "v": version, "body": body}, use_bin_type=True)
    assert isinstance(out, bytes)
    return out


def unpack_any(data: bytes, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[str, int, dict[str, Any]]:
    """Decode an envelope without checking its schema; returns ``(schema, version, body)``."""
    if len(data) > max_bytes:
        raise OversizedMessage(f"envelope of {len(data)} bytes exceeds the limit of {max_bytes}")
    if not data:
        raise TruncatedMessage("empty envelope: expected a msgpack map")
    try:
        # The common case in one C call; the streaming unpacker below only classifies failures.
        obj = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except msgpack.ExtraData as exc:
        raise MalformedMessage(f"trailing bytes after the envelope ({len(data)} bytes)") from exc
    except (ValueError, TypeError, msgpack.UnpackException) as exc:
        raise _classify(data, exc) from exc
    if not isinstance(obj, dict):
        raise MalformedMessage(f"envelope is a {type(obj).__name__}, expected a map")
    schema, version, body = obj.get("schema"), obj.get("v"), obj.get("body")
    if not isinstance(schema, str):
        raise MalformedMessage("envelope has no string 'schema' field")
    if not isinstance(version, int) or isinstance(version, bool):
        raise MalformedMessage(f"envelope of {schema!r} has no integer 'v' field")
    if not isinstance(body, dict):
        raise MalformedMessage(f"envelope of {schema!r} has no map 'body' field")
    return schema, version, body


def _classify(data: bytes, exc: Exception) -> ContractError:
    """Tell a truncated envelope from a malformed one (only on the error path)."""
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True, max_buffer_size=max(len(data), 1))
    unpacker.feed(data)
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return TruncatedMessage(f"envelope ends early after {len(data)} bytes")
    except (ValueError, TypeError, msgpack.UnpackException) as inner:
        return MalformedMessage(f"not a msgpack envelope: {inner}")
    return MalformedMessage(f"not a msgpack envelope: {exc}")


def unpack(
    data: bytes, schema: str, versions: frozenset[int], max_bytes: int = DEFAULT_MAX_BYTES
) -> tuple[int, dict[str, Any]]:
    """Decode an envelope that must be of ``schema`` in one of ``versions``."""
    got_schema, version, body = unpack_any(data, max_bytes)
    if got_schema != schema:
        raise MalformedMessage(f"expected a {schema!r} envelope, got {got_schema!r}")
    if version not in versions:
        known = ", ".join(str(v) for v in sorted(versions))
        raise UnknownVersion(f"{schema!r} version {version} is not supported (known: {known})")
    return version, body


def field(body: dict[str, Any], name: str, kind: type | tuple[type, ...], schema: str) -> Any:
    """Return ``body[name]`` checked against ``kind``, or raise :class:`MalformedMessage`."""
    if name not in body:
        raise MalformedMessage(f"{schema}: missing field {name!r}")
    value = body[name]
    if isinstance(value, bool) and kind in (int, float):
        raise MalformedMessage(f"{schema}: field {name!r} is a bool, expected {kind}")
    if kind is float and isinstance(value, int):
        return float(value)
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
        raise MalformedMessage(
            f"{schema}: field {name!r} is {type(value).__name__}, expected {names}"
        )
    return value
