"""Whether the embedded Prefect API can open its SQLite database, decided before Prefect starts.

A database migrated by a newer Prefect (say 3.9.1, when this environment runs 3.8.8) names an Alembic
revision the installed Prefect does not have; its ephemeral API then fails with alembic's "Can't locate
revision" after waiting minutes for the server to come up. Reading the revision with sqlite3 and the
installed Prefect's migration files (prefect/server/database/_migrations/versions/sqlite/, each declaring
`revision = "..."`) turns that into one line naming the file and the fix. Prefect itself is not imported.
"""

from __future__ import annotations

import importlib.util
import re
import sqlite3
from importlib import metadata
from pathlib import Path

from trtllm_oci.errors import InputError

_REVISION_RE = re.compile(r"""^revision\s*=\s*["']([0-9a-f]+)["']""", re.MULTILINE)
_MIGRATIONS = ("server", "database", "_migrations", "versions", "sqlite")


class PrefectDatabaseError(InputError):
    """The Prefect database was made by another Prefect version (or is not a Prefect database)."""


def known_revisions() -> set[str] | None:
    """The Alembic revisions of the installed Prefect's SQLite migrations (None: Prefect not found)."""
    spec = importlib.util.find_spec("prefect")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations))).joinpath(*_MIGRATIONS)
    revisions = set()
    for script in folder.glob("*.py"):
        match = _REVISION_RE.search(script.read_text(encoding="utf-8", errors="replace"))
        if match:
            revisions.add(match.group(1))
    return revisions or None


def database_revision(database: Path) -> str | None:
    """The revision recorded in a Prefect SQLite database, or None for a fresh (or empty) one."""
    if not database.is_file() or database.stat().st_size == 0:
        return None
    try:
        with sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5) as connection:
            rows = connection.execute("SELECT version_num FROM alembic_version").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise PrefectDatabaseError(
            f"cannot read the Prefect database {database} ({exc}); move it aside (mv {database} {database}.bak) "
            "so Prefect creates a new one") from None
    except sqlite3.DatabaseError as exc:
        raise PrefectDatabaseError(
            f"{database} is not a Prefect SQLite database ({exc}); move it aside (mv {database} {database}.bak) "
            "so Prefect creates a new one") from None
    return str(rows[0][0]) if rows else None


def check_prefect_database(database: Path) -> None:
    """Refuse, in one line, a database the installed Prefect cannot migrate (made by another version)."""
    revision = database_revision(database)
    known = known_revisions()
    if revision is None or known is None or revision in known:
        return
    version = metadata.version("prefect")
    raise PrefectDatabaseError(
        f"the Prefect database {database} was migrated by another Prefect version (revision {revision}, unknown "
        f"to the installed prefect {version}); move it aside (mv {database} {database}.bak), point PREFECT_HOME "
        "at another directory, or set PREFECT_API_URL to a running Prefect server")
