"""The real server (`manage.py serve`, daphne) on the test database, for tests that need
real HTTP or websockets: browser tests, and clients such as the openai SDK.

Tests that use `live_server_url` must also request `transactional_db`, so what they and
the server write is committed where the other can see it, and flushed afterwards."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
START_TIMEOUT = 30


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(db: dict) -> str:
    """A DATABASE_URL for the test database; the embedded one is on a unix socket."""
    user = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        user += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or ""
    if not host or host.startswith("/"):
        return f"postgresql://{user}@/{db['NAME']}?host={quote(host, safe='')}"
    return f"postgresql://{user}@{host}:{db['PORT'] or 5432}/{db['NAME']}"


def _answers(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=2).close()
    except urllib.error.HTTPError:
        return True  # any status will do: the server is up
    except OSError:
        return False
    return True


def server_env(base: str) -> dict:
    """The environment of a server on the test database; call where the database is open."""
    from django.db import connection

    from apps.core.crypto import current_master_keys

    return {
        **os.environ,
        "DATABASE_URL": _database_url(connection.settings_dict),
        "SECRET_KEY": "e2e-test-secret-key-not-for-production",
        # The same master keys as this process, so both read the secrets tests store.
        "ORRERY_MASTER_KEYS": ",".join(current_master_keys()),
        # Fake providers listen on loopback; production mode would refuse them.
        "ORRERY_ALLOW_PRIVATE_NETWORKS": "true",
        "SECURE_COOKIES": "false",
        "DEBUG": "false",
        "SITE_URL": base,  # invitation links point at this server
    }


@contextmanager
def serving(env: dict, port: int, *options: str, log_name: str = "server.log"):
    """`manage.py serve` on 127.0.0.1:port, up and answering; stopped (SIGTERM) after."""
    base = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(exist_ok=True)
    log_path = ARTIFACTS / log_name
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "manage.py", "serve", "--no-migrate", *options]
            + ["--host", "127.0.0.1", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _answers(f"{base}/api/health"):
            if proc.poll() is not None or time.monotonic() > deadline:
                what = (
                    f"exited with code {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not answer /api/health within {START_TIMEOUT}s"
                )
                pytest.fail(f"The server {what}. Its output:\n{log_path.read_text()}")
            time.sleep(0.2)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def live_server_url(django_db_setup, django_db_blocker):
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    with django_db_blocker.unblock():
        env = server_env(base)
    # --no-worker: its heartbeats would land in the test database while other tests
    # assert on heartbeats; the flows driven here need no background job.
    with serving(env, port, "--no-worker"):
        yield base


@pytest.fixture
def benchmark_env(transactional_db, monkeypatch):
    """This process's environment pointed at the test database, for the benchmark
    commands that start `manage.py serve` themselves."""
    for name, value in server_env("http://127.0.0.1:8000").items():
        monkeypatch.setenv(name, value)
