"""Per-vehicle credentials: random bearer tokens, stored as salted SHA-256, compared in constant time.

Why SHA-256 and not scrypt: a token is ``secrets.token_urlsafe(32)``, 256 bits from the OS CSPRNG.
Slow password hashes (scrypt, argon2) exist to make guessing *low-entropy* human passwords
expensive; guessing a 256-bit token is infeasible at any hash speed, so a slow hash buys no
security here. It would cost tens of milliseconds of CPU on *every* request (each PATCH chunk is
authenticated), which turns authentication itself into a denial-of-service lever. A per-vehicle
random salt still makes a leaked table useless for precomputed look-ups, and
:func:`hmac.compare_digest` keeps the comparison constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from cloud_ingest.errors import AuthError, UploadNotFound
from cloud_ingest.storage.metadata.protocol import MetadataDB, OperatorRow, VehicleRow

VEHICLE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_DUMMY_SALT = b"\0" * 16


def new_token() -> str:
    """A fresh 256-bit bearer token (URL-safe text)."""
    return secrets.token_urlsafe(32)


def hash_token(token: str, salt: bytes) -> bytes:
    """The stored form of ``token``: SHA-256 over salt and token."""
    return hashlib.sha256(salt + token.encode()).digest()


def check_vehicle_id(vehicle_id: str) -> str:
    """Return ``vehicle_id`` if it is a safe identifier (it names object-store folders)."""
    if not VEHICLE_ID_RE.fullmatch(vehicle_id):
        raise AuthError(f"vehicle id {vehicle_id!r} must be 1-64 of letters, digits, '.', '_', '-'",
                        reason="bad_vehicle_id")
    return vehicle_id


def register(db: MetadataDB, vehicle_id: str) -> str:
    """Register a vehicle; return its token (shown once, never stored in clear)."""
    check_vehicle_id(vehicle_id)
    token, salt, now = new_token(), secrets.token_bytes(16), time.time_ns()
    db.add_vehicle(VehicleRow(vehicle_id, salt, hash_token(token, salt), now, now))
    return token


def rotate(db: MetadataDB, vehicle_id: str) -> str:
    """Give a registered vehicle a new token; the old one stops working at once."""
    token, salt = new_token(), secrets.token_bytes(16)
    if not db.set_vehicle_token(vehicle_id, salt, hash_token(token, salt), time.time_ns()):
        raise UploadNotFound(f"vehicle {vehicle_id!r} is not registered", reason="unknown_vehicle")
    return token


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated vehicle."""

    vehicle_id: str


def parse_bearer(header: str | None) -> str:
    """The token in an ``Authorization: Bearer <token>`` header."""
    if not header:
        raise AuthError("missing Authorization header (expected 'Bearer <token>')", reason="no_credentials")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError("Authorization header must be 'Bearer <token>'", reason="no_credentials")
    return token.strip()


def authenticate(db: MetadataDB, vehicle_header: str | None, auth_header: str | None) -> Principal:
    """Check ``X-Avdata-Vehicle`` + bearer token; raise :class:`AuthError` (401) on any failure.

    Unknown vehicles and wrong tokens give the same answer, after the same hashing work.
    """
    if not vehicle_header:
        raise AuthError("missing X-Avdata-Vehicle header", reason="no_credentials")
    token = parse_bearer(auth_header)
    row = db.get_vehicle(vehicle_header) if VEHICLE_ID_RE.fullmatch(vehicle_header) else None
    salt = row.salt if row is not None else _DUMMY_SALT
    expected = row.token_hash if row is not None else b"\0" * 32
    ok = hmac.compare_digest(hash_token(token, salt), expected)
    if row is None or not ok:
        raise AuthError("invalid vehicle id or token", reason="bad_credentials")
    return Principal(row.vehicle_id)


OPERATOR_PREFIX = "op."


def add_operator(db: MetadataDB, name: str) -> str:
    """Create a read-API operator; return its token ``op.<name>.<secret>`` (shown once, stored hashed)."""
    check_vehicle_id(name)
    secret, salt = new_token(), secrets.token_bytes(16)
    db.add_operator(OperatorRow(name, salt, hash_token(secret, salt), time.time_ns()))
    return f"{OPERATOR_PREFIX}{name}.{secret}"


def authenticate_operator(db: MetadataDB, auth_header: str | None) -> str:
    """The operator named by a valid ``Bearer op.<name>.<secret>``; :class:`AuthError` (401) otherwise."""
    token = parse_bearer(auth_header)
    name, _, secret = token.removeprefix(OPERATOR_PREFIX).rpartition(".")
    row = db.get_operator(name) if token.startswith(OPERATOR_PREFIX) and VEHICLE_ID_RE.fullmatch(name) else None
    salt = row.salt if row is not None else _DUMMY_SALT
    expected = row.token_hash if row is not None else b"\0" * 32
    ok = hmac.compare_digest(hash_token(secret, salt), expected)
    if row is None or not ok:
        raise AuthError("invalid operator token (create one with 'avdata-cloud operators add NAME')",
                        reason="bad_credentials")
    return row.operator_id


def require_owner(principal: Principal, owner_vehicle_id: str, what: str) -> None:
    """403 unless the authenticated vehicle owns the resource."""
    if principal.vehicle_id != owner_vehicle_id:
        raise AuthError(f"{what} belongs to another vehicle", reason="forbidden", status=403)
