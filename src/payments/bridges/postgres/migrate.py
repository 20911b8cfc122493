"""SQL migrations: numbered files applied once each, in order, safe to run from many processes at once.

A migration is ``migrations/NNNN_name.sql``. Each file runs in its own transaction together with its
row in ``schema_migrations``, so a failed file leaves nothing behind and is tried again next time.
An applied file must never change: its checksum is recorded and compared on every run.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final
from urllib.parse import unquote, urlsplit, urlunsplit

import asyncpg

from payments.bridges.postgres.errors import unavailable_on_connection_errors

#: ``0001_payments.sql`` -> version 1, name ``0001_payments``.
MIGRATION_FILE: Final = re.compile(r"^(?P<version>\d{4})_[a-z0-9_]+\.sql$")

#: Session advisory lock held while migrating, so concurrent runs queue up instead of racing.
#: The value is the ASCII of "migrate!" read as a big-endian integer: fixed, and unlikely to collide.
MIGRATION_LOCK_KEY: Final = 0x6D69_6772_6174_6521

#: Bookkeeping: which files ran, with what content, and when.
CREATE_SCHEMA_MIGRATIONS: Final = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""

#: Wait until no other migrator runs; released when our session ends.
ACQUIRE_MIGRATION_LOCK: Final = "SELECT pg_advisory_lock($1)"

#: What has been applied so far.
SELECT_APPLIED: Final = "SELECT version, name, checksum FROM schema_migrations ORDER BY version"

#: Record one applied file, in the same transaction as its statements.
RECORD_APPLIED: Final = "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)"

#: Whether the database named in the DSN exists (asked of the maintenance database).
DATABASE_EXISTS: Final = "SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)"

#: Quote a database name as an identifier, by the server's own rules.
QUOTE_IDENTIFIER: Final = "SELECT quote_ident($1)"

#: Create the database. An identifier cannot be a bind parameter, so this is the one statement that is
#: completed in Python, and only ever with the server's ``quote_ident`` output.
CREATE_DATABASE_TEMPLATE: Final = "CREATE DATABASE {quoted_name}"

#: The database every PostgreSQL server has, used to create others.
MAINTENANCE_DATABASE: Final = "postgres"


class MigrationError(RuntimeError):
    """The migrations cannot be applied as they stand."""


class MigrationChecksumMismatch(MigrationError):
    """A migration file changed after it was applied."""


@dataclass(frozen=True)
class Migration:
    """One SQL file and its identity."""

    version: int
    #: The file name without ``.sql``, e.g. ``0001_payments``.
    name: str
    sql: str
    #: SHA-256 (hex) of the file's bytes.
    checksum: str


def _packaged_migrations() -> Traversable:
    return files("payments.bridges.postgres") / "migrations"


def load_migrations(source: Traversable | None = None) -> list[Migration]:
    """The migrations in ``source`` (default: the package's own), ordered by version."""
    directory = source if source is not None else _packaged_migrations()
    found: dict[int, Migration] = {}
    for entry in directory.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = MIGRATION_FILE.match(entry.name)
        if match is None:
            raise MigrationError(f"{entry.name}: migration files are named NNNN_lower_case_name.sql")
        migration = _read(entry, int(match["version"]))
        if migration.version in found:
            raise MigrationError(f"{entry.name}: version {migration.version} is used twice")
        found[migration.version] = migration
    return [found[version] for version in sorted(found)]


def _read(entry: Traversable, version: int) -> Migration:
    content = entry.read_bytes()
    return Migration(
        version=version,
        name=entry.name.removesuffix(".sql"),
        sql=content.decode("utf-8"),
        checksum=hashlib.sha256(content).hexdigest(),
    )


async def migrate(dsn: str, *, migrations: Traversable | None = None) -> list[str]:
    """Apply every migration not yet applied; return the names applied by this call, in order.

    Concurrent callers are serialised by an advisory lock: the second waits, then finds nothing to do.
    Raises ``MigrationChecksumMismatch`` if an applied file was edited, ``MigrationError`` if a file
    fails (its transaction is rolled back), ``DependencyUnavailable`` if the server cannot be reached.
    """
    available = load_migrations(migrations)
    with unavailable_on_connection_errors("migrate"):
        connection = await asyncpg.connect(dsn)
    try:
        # Closing the connection releases the session lock, on success and on error alike.
        await connection.execute(ACQUIRE_MIGRATION_LOCK, MIGRATION_LOCK_KEY)
        await connection.execute(CREATE_SCHEMA_MIGRATIONS)
        applied = await _applied_checksums(connection)
        _refuse_changed(available, applied)
        return [await _apply(connection, m) for m in available if m.version not in applied]
    finally:
        await connection.close()


async def _applied_checksums(connection: asyncpg.Connection[asyncpg.Record]) -> dict[int, str]:
    return {row["version"]: row["checksum"] for row in await connection.fetch(SELECT_APPLIED)}


def _refuse_changed(migrations: list[Migration], applied: dict[int, str]) -> None:
    for migration in migrations:
        recorded = applied.get(migration.version)
        if recorded is not None and recorded != migration.checksum:
            raise MigrationChecksumMismatch(
                f"migration {migration.name} was changed after it was applied "
                f"(recorded checksum {recorded[:12]}…, file now {migration.checksum[:12]}…); "
                "restore the file and put the change in a new migration"
            )


async def _apply(connection: asyncpg.Connection[asyncpg.Record], migration: Migration) -> str:
    try:
        async with connection.transaction():
            await connection.execute(migration.sql)
            await connection.execute(RECORD_APPLIED, migration.version, migration.name, migration.checksum)
    except asyncpg.PostgresError as error:
        raise MigrationError(f"migration {migration.name} failed: {error}") from error
    return migration.name


def _split_database(dsn: str) -> tuple[str, str]:
    """The database named in a ``postgresql://`` DSN, and the same DSN pointing at the maintenance db."""
    parts = urlsplit(dsn)
    name = unquote(parts.path.lstrip("/"))
    if parts.scheme not in ("postgres", "postgresql") or not name:
        raise ValueError("expected a postgresql:// DSN that names a database")
    # Host, credentials and query (sslmode and other TLS options) carry over unchanged.
    return name, urlunsplit(parts._replace(path=f"/{MAINTENANCE_DATABASE}"))


async def ensure_database(dsn: str) -> bool:
    """Create the database named in ``dsn`` if it does not exist; True if this call created it."""
    name, maintenance_dsn = _split_database(dsn)
    with unavailable_on_connection_errors("ensure database"):
        connection = await asyncpg.connect(maintenance_dsn)
    try:
        if await connection.fetchval(DATABASE_EXISTS, name):
            return False
        quoted_name = await connection.fetchval(QUOTE_IDENTIFIER, name)
        try:
            await connection.execute(CREATE_DATABASE_TEMPLATE.format(quoted_name=quoted_name))
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # Another process created it between our check and our CREATE. Two CREATEs racing on the
            # catalogue surface as a unique violation on pg_database rather than "already exists".
            return False
        return True
    finally:
        await connection.close()
