"""The CLI's and the demo's Prefect state: our own PREFECT_HOME unless the user names a server or a home, and
a database another Prefect version migrated refused in one line before Prefect's API would wait on it."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trtllm_oci.prefect_state import PrefectDatabaseError, check_prefect_database, known_revisions
from trtllm_oci.settings import current_settings


@pytest.fixture(autouse=True)
def _user_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("PREFECT_API_URL", "PREFECT_HOME", "PREFECT_PROFILE", "PREFECT_API_DATABASE_CONNECTION_URL",
                 "PREFECT_SERVER_DATABASE_CONNECTION_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.setenv("TRTLLM_OCI_HOME", str(tmp_path / "home"))


def _database(path: Path, revision: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        connection.execute("INSERT INTO alembic_version VALUES (?)", (revision,))
    return path


def test_by_default_the_cli_uses_its_own_prefect_home(tmp_path: Path) -> None:
    settings = current_settings()
    environment = settings.prefect_environment()
    assert environment == {"PREFECT_HOME": str(tmp_path / "home" / "prefect")}
    assert settings.prefect_database(environment) == tmp_path / "home" / "prefect" / "prefect.db"


@pytest.mark.parametrize(("name", "value"), [("PREFECT_API_URL", "http://127.0.0.1:4200/api"),
                                             ("PREFECT_HOME", "/somewhere/prefect")])
def test_a_server_or_home_of_the_users_own_is_kept(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    assert current_settings().prefect_environment() == {}


def test_a_server_set_in_the_users_active_profile_is_kept(tmp_path: Path) -> None:
    profiles = tmp_path / "user" / ".prefect" / "profiles.toml"
    profiles.parent.mkdir(parents=True)
    profiles.write_text('active = "work"\n[profiles.work]\nPREFECT_API_URL = "http://prefect.internal/api"\n'
                        '[profiles.ephemeral]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "true"\n')
    assert current_settings().prefect_environment() == {}
    profiles.write_text('active = "ephemeral"\n[profiles.ephemeral]\nPREFECT_SERVER_ALLOW_EPHEMERAL_MODE = "true"\n')
    assert "PREFECT_HOME" in current_settings().prefect_environment()


def test_the_installed_prefects_own_database_passes(tmp_path: Path) -> None:
    known = known_revisions()
    assert known and len(known) > 50  # every SQLite migration script of the installed Prefect
    check_prefect_database(_database(tmp_path / "prefect.db", sorted(known)[0]))
    check_prefect_database(tmp_path / "absent.db")  # a fresh home: Prefect creates it


def test_a_database_from_another_prefect_version_gets_one_line(tmp_path: Path) -> None:
    db = _database(tmp_path / "prefect.db", "0123456789ab")
    with pytest.raises(PrefectDatabaseError) as error:
        check_prefect_database(db)
    message = str(error.value)
    assert "\n" not in message and str(db) in message and "0123456789ab" in message
    assert f"mv {db} {db}.bak" in message and "PREFECT_API_URL" in message


def test_a_file_that_is_not_a_database_is_named(tmp_path: Path) -> None:
    db = tmp_path / "prefect.db"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(PrefectDatabaseError, match="not a Prefect SQLite database"):
        check_prefect_database(db)


def test_make_demo_with_a_foreign_database_stops_at_once_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _database(home / "prefect" / "prefect.db", "fedcba987654")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "TRTLLM_OCI_"))}
    env.update(HOME=str(tmp_path / "user"), TRTLLM_OCI_HOME=str(home))
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "trtllm_oci.cli", "demo", "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, timeout=120, env=env)
    assert time.monotonic() - start < 60
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "fedcba987654" in result.stderr and "mv " in result.stderr
    assert sorted(p.name for p in home.iterdir()) == ["prefect"] and not (tmp_path / "out").exists()
