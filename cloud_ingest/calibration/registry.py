"""Versioned calibration per vehicle, each version valid for ``[valid_from_ns, valid_to_ns)``.

Policy when a version is added (checked and applied in one transaction):

- A new version that starts strictly after the vehicle's open-ended latest version
  (``valid_to_ns`` is ``None``) *supersedes* it: the older one is closed at the new
  ``valid_from_ns``. This is the usual workflow: "the car was recalibrated at t".
- Any other overlap with a stored version is rejected with :class:`CalibrationConflict`
  naming that version and its range; nothing is changed.
- Re-adding an identical bundle (same vehicle, version and content as submitted) is a no-op, so a
  retried import is safe; the same version name with different content is a conflict.

The table ``calibration_versions`` is part of the metadata DB's versioned migrations, so the
registry works on both back-ends; adds are serialised per vehicle (SQLite: the write lock;
PostgreSQL: an advisory lock), so two daemons adding versions at once cannot both pass the
overlap check. :class:`CalibrationStore` is the interface callers type against.
"""

from __future__ import annotations

import dataclasses
import operator
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter

from cloud_ingest.calibration.checks import validate_bundle
from cloud_ingest.errors import CalibrationConflict, CalibrationError, CalibrationNotFound
from cloud_ingest.storage.metadata.rows import Tx
from cloud_ingest.storage.metadata.sql import SQLMetadataDB
from shared.calibration import CalibrationBundle
from shared.errors import ContractError

_COLUMNS = "version, valid_from_ns, valid_to_ns, bundle"
_Row = tuple[str, int, int | None, bytes]


class CalibrationStore(Protocol):
    """What the ingest needs from a calibration registry, whatever stores it."""

    def add(self, bundle: CalibrationBundle) -> CalibrationBundle: ...

    def valid_at(self, vehicle_id: str, t_ns: int) -> CalibrationBundle: ...

    def versions(self, vehicle_id: str) -> list[CalibrationBundle]: ...


class CalibrationMetrics:
    """Prometheus counters of the registry, registered in ``registry`` (a private one by default)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.rejected = Counter("avdata_calibration_rejected", "Calibration bundles refused by the "
                                "registry, by reason.", ["reason"], registry=self.registry)
        self.added = Counter("avdata_calibration_added", "Calibration versions stored.",
                             registry=self.registry)
        self.lookups = Counter("avdata_calibration_lookups", "valid_at lookups, by result (hit, miss).",
                               ["result"], registry=self.registry)


class CalibrationRegistry:
    """:class:`CalibrationStore` in the metadata DB (SQLite or PostgreSQL; see module docstring)."""

    def __init__(self, db: SQLMetadataDB, metrics: CalibrationMetrics | None = None) -> None:
        self._db = db
        self.metrics = metrics if metrics is not None else CalibrationMetrics()

    @contextmanager
    def _transaction(self, vehicle_id: str | None = None) -> Iterator[Tx]:
        try:
            with self._db.transaction() as tx:
                if vehicle_id is not None:
                    self._db._lock_named(tx, "calibration:" + vehicle_id)
                yield tx
        except CalibrationError:
            raise
        except Exception as exc:
            if type(exc).__module__.split(".")[0] in ("sqlite3", "psycopg"):
                raise CalibrationError(f"calibration store: {exc}", reason="calibration_store") from exc
            raise

    def add(self, bundle: CalibrationBundle) -> CalibrationBundle:
        """Store ``bundle``; returns it as stored. Raises :class:`InvalidCalibration` or
        :class:`CalibrationConflict` (counted in ``avdata_calibration_rejected_total``)."""
        try:
            validate_bundle(bundle)
            with self._transaction(bundle.vehicle_id) as tx:
                stored = self._add(tx, bundle)
        except CalibrationError as exc:
            self.metrics.rejected.labels(reason=exc.reason).inc()
            raise
        return stored

    def _add(self, tx: Tx, bundle: CalibrationBundle) -> CalibrationBundle:
        blob = bundle.encode()
        rows = tx.run(f"SELECT {_COLUMNS} FROM calibration_versions WHERE vehicle_id = ? AND version = ?",
                      (bundle.vehicle_id, bundle.version))
        if rows:
            same = _row(rows[0])
            if bytes(same[3]) == blob:
                return self._bundle(bundle.vehicle_id, same)
            raise CalibrationConflict(f"vehicle {bundle.vehicle_id!r} already has a calibration version "
                                      f"{bundle.version!r} with different content; use a new version name")
        end = bundle.valid_to_ns
        overlapping = [_row(r) for r in tx.run(
            f"SELECT {_COLUMNS} FROM calibration_versions WHERE vehicle_id = ? "
            "AND (CAST(? AS BIGINT) IS NULL OR valid_from_ns < ?) AND (valid_to_ns IS NULL OR valid_to_ns > ?) "
            "ORDER BY valid_from_ns", (bundle.vehicle_id, end, end, bundle.valid_from_ns))]
        for version, start, stop, _ in overlapping:
            if stop is None and start < bundle.valid_from_ns:
                continue  # the open-ended latest version: superseded below
            raise CalibrationConflict(
                f"calibration {bundle.vehicle_id!r}/{bundle.version!r} valid "
                f"[{bundle.valid_from_ns}, {_end(end)}) overlaps version {version!r} valid "
                f"[{start}, {_end(stop)}); close or move one of the ranges")
        tx.run(
            "UPDATE calibration_versions SET valid_to_ns = ? "
            "WHERE vehicle_id = ? AND valid_to_ns IS NULL AND valid_from_ns < ?",
            (bundle.valid_from_ns, bundle.vehicle_id, bundle.valid_from_ns))
        tx.run(
            "INSERT INTO calibration_versions (vehicle_id, version, valid_from_ns, valid_to_ns, bundle, "
            "added_ns) VALUES (?, ?, ?, ?, ?, ?)",
            (bundle.vehicle_id, bundle.version, bundle.valid_from_ns, end, blob, time.time_ns()))
        self.metrics.added.inc()
        return bundle

    def valid_at(self, vehicle_id: str, t_ns: int) -> CalibrationBundle:
        """The version of ``vehicle_id`` whose range contains ``t_ns``; :class:`CalibrationNotFound`
        when none does (counted as a ``miss``)."""
        try:
            t_ns = operator.index(t_ns)
        except TypeError as exc:
            raise CalibrationError(f"t_ns must be integer nanoseconds, got {t_ns!r}") from exc
        if not -(2**63) <= t_ns < 2**63:
            raise CalibrationError(f"t_ns {t_ns} is outside the 64-bit range")
        row = self._query(
            f"SELECT {_COLUMNS} FROM calibration_versions WHERE vehicle_id = ? AND valid_from_ns <= ? "
            "AND (valid_to_ns IS NULL OR valid_to_ns > ?) ORDER BY valid_from_ns DESC LIMIT 1",
            (vehicle_id, t_ns, t_ns))
        if not row:
            self.metrics.lookups.labels(result="miss").inc()
            ranges = [f"{b.version} [{b.valid_from_ns}, {_end(b.valid_to_ns)})" for b in self.versions(vehicle_id)]
            raise CalibrationNotFound(f"no calibration of vehicle {vehicle_id!r} is valid at t_ns={t_ns} "
                                      f"(versions: {'; '.join(ranges) or 'none'})")
        self.metrics.lookups.labels(result="hit").inc()
        return self._bundle(vehicle_id, row[0])

    def versions(self, vehicle_id: str) -> list[CalibrationBundle]:
        """Every stored version of ``vehicle_id``, oldest ``valid_from_ns`` first."""
        rows = self._query(f"SELECT {_COLUMNS} FROM calibration_versions WHERE vehicle_id = ? "
                           "ORDER BY valid_from_ns", (vehicle_id,))
        return [self._bundle(vehicle_id, row) for row in rows]

    def _query(self, sql: str, params: tuple[object, ...]) -> list[_Row]:
        with self._transaction() as tx:
            return [_row(r) for r in tx.run(sql, params)]

    @staticmethod
    def _bundle(vehicle_id: str, row: _Row) -> CalibrationBundle:
        version, _, stop, blob = row
        try:
            bundle = CalibrationBundle.decode(bytes(blob))
        except ContractError as exc:
            raise CalibrationError(f"stored calibration {vehicle_id!r}/{version!r} is unreadable: {exc}",
                                   reason="calibration_store") from exc
        # The submitted bundle is kept verbatim; the range end may since have been closed.
        return dataclasses.replace(bundle, valid_to_ns=stop)


def _row(r: Sequence[Any]) -> _Row:
    return str(r[0]), int(r[1]), None if r[2] is None else int(r[2]), bytes(r[3])


def _end(valid_to_ns: int | None) -> str:
    return "open" if valid_to_ns is None else str(valid_to_ns)
