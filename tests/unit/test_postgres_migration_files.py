"""Migration files are found, ordered and checked before any database is touched."""

from __future__ import annotations

import re

import pytest

from payments.bridges.postgres.migrate import MigrationError, load_migrations


def test_the_packaged_migrations_are_numbered_from_one_without_gaps():
    versions = [migration.version for migration in load_migrations()]

    assert versions == list(range(1, len(versions) + 1))
    assert len(versions) >= 5


def test_every_packaged_migration_has_a_sha256_checksum_and_sql():
    for migration in load_migrations():
        assert re.fullmatch(r"[0-9a-f]{64}", migration.checksum)
        assert "CREATE" in migration.sql


def test_migrations_are_ordered_by_version_not_by_listing_order(tmp_path):
    (tmp_path / "0002_second.sql").write_text("SELECT 2;")
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")

    assert [m.name for m in load_migrations(tmp_path)] == ["0001_first", "0002_second"]


def test_a_badly_named_migration_file_is_refused(tmp_path):
    (tmp_path / "1_first.sql").write_text("SELECT 1;")

    with pytest.raises(MigrationError, match="NNNN_lower_case_name"):
        load_migrations(tmp_path)


def test_two_migrations_with_one_version_are_refused(tmp_path):
    (tmp_path / "0001_first.sql").write_text("SELECT 1;")
    (tmp_path / "0001_again.sql").write_text("SELECT 2;")

    with pytest.raises(MigrationError, match="used twice"):
        load_migrations(tmp_path)
