"""Downstream migrations on both metadata back-ends: applied once, in order, per component."""

from __future__ import annotations

import threading

import pytest

from cloud_ingest.config import CloudConfig
from downstream.migrations import migrate
from tests.cloud_ingest.conftest import open_config_db

MIGRATIONS = ((1, ("CREATE TABLE t_one (k TEXT PRIMARY KEY, v {blob})",)),
              (2, ("ALTER TABLE t_one ADD COLUMN n BIGINT NOT NULL DEFAULT 0",)))


def test_applied_once_in_order_and_per_component(cloud_config: CloudConfig) -> None:
    db = open_config_db(cloud_config)
    try:
        assert migrate(db, "one", MIGRATIONS[:1]) == 1
        assert migrate(db, "one", MIGRATIONS) == 2  # only the new one runs (a second CREATE would fail)
        assert migrate(db, "one", MIGRATIONS) == 2
        with db.transaction() as tx:
            tx.run("INSERT INTO t_one (k, v, n) VALUES (?, ?, ?)", ("a", b"x", 3))
            assert tx.run("SELECT n FROM t_one WHERE k = 'a'") == [(3,)]
        assert migrate(db, "two", ((1, ("CREATE TABLE t_two (k TEXT)",)),)) == 1
        with pytest.raises(ValueError, match="increasing"):
            migrate(db, "bad", ((2, ()), (1, ())))
    finally:
        db.close()


def test_processes_starting_together_apply_each_migration_once(cloud_config: CloudConfig) -> None:
    dbs = [open_config_db(cloud_config) for _ in range(4)]
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            migrate(dbs[i], "race", MIGRATIONS)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert not errors
        with dbs[0].transaction() as tx:
            assert tx.run("SELECT COUNT(*) FROM downstream_schema WHERE component = 'race'") == [(2,)]
    finally:
        for d in dbs:
            d.close()
