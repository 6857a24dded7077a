"""Benchmark: streaming chat completions through the gateway versus straight from the
same upstream, at 1 and at 64 concurrent streams.

Three measurements, each taken in alternating rounds (direct, gateway, direct, …):
  1 stream      one stream at a time; the upstream answers as fast as it can, so the
                gateway's own latency is all there is to see;
  64 streams    64 clients, each starting its next stream as soon as the last one ends
                (as load tools count concurrency), for a few seconds a round; the upstream
                paces its tokens like a fast model (`--token-interval`, 10 ms);
  64 at once    64 streams started together from an upstream that does not pace at all:
                the relay's throughput, where first tokens queue behind everyone's tokens.

The upstream is the fake OpenAI server from tests/fakes (this is a development tool, run
from a checkout), served from one event loop in its own process, so it neither shares a
GIL with the load generator nor takes more of the machine than a real upstream would.
The gateway is the real server (`manage.py serve`) on the embedded database, in a bench
workspace whose OpenAI credentials point at the fake. On a machine of two cores or more,
the load generator and the fakes share the first core and the gateway has the rest, as
if the clients and the provider were other machines: otherwise the gateway's own load
slows the fake and the clients in its rounds, and that reads as the gateway's latency.
PostgreSQL (the usage ledger) is not pinned."""

from __future__ import annotations

import asyncio
import os
import random
import secrets
import socket
import subprocess
import sys
import time

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.management.proc import tree_cpu_seconds
from apps.providers import services
from apps.providers.management.sse_client import SSEClient, StreamFailed
from apps.tenants.models import ApiKeyScope, Membership, Role, User
from apps.tenants.services import api_key_create, user_create

FAKE_KEY = "sk-bench-key"
WORDS = 60  # the fake echoes the prompt: ~62 deltas


def _prompt(words: int = WORDS) -> str:
    return " ".join(f"word{i}" for i in range(words))


# Runs the fake in its own interpreter (it needs no Django), on one event loop rather
# than a thread per stream (see tests/fakes/aio_server.py): prints its URL, then serves.
FAKE_SCRIPT = f"""
import sys
from tests.fakes.aio_server import serve_forever
from tests.fakes.openai import FakeOpenAI
fake = FakeOpenAI(api_key={FAKE_KEY!r}, chunk_delay=float(sys.argv[1]))
serve_forever(fake, announce=lambda url: print(url, flush=True))
"""


def _start_fake(token_seconds: float) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603 - our own fake
        [sys.executable, "-c", FAKE_SCRIPT, str(token_seconds)],
        cwd=settings.BASE_DIR,
        stdout=subprocess.PIPE,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def _ms(values: list[float], q: float) -> str:
    return f"{_pct(values, q) * 1000:7.2f} ms"


def _body(model: str, words: int = WORDS) -> dict:
    return {
        "model": model,
        "messages": [{"role": "user", "content": _prompt(words)}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }


class _Side:
    """One way to the upstream (direct, or through the gateway) and what it measured.
    A round is either `concurrency` streams started together, or (`seconds` given)
    `concurrency` clients streaming back to back for that long."""

    def __init__(self, url: str, key: str, model: str, server_pid: int | None = None):
        self.url, self.client, self.body = url, SSEClient(url, key), _body(model)
        self.model = model
        self.server_pid = server_pid  # the gateway's: its CPU per stream is reported
        self.server_cpu = 0.0
        self.results: list[tuple[float | None, float, int]] = []
        self.wall = 0.0

    async def round(
        self, concurrency: int, *, measure: bool = True, seconds: float | None = None
    ) -> None:
        started = time.perf_counter()
        cpu_before = tree_cpu_seconds(self.server_pid) if self.server_pid else 0.0

        async def back_to_back(index: int) -> list:
            # Answers of varied length (30-90 words), the same series on both sides, and
            # clients starting a little apart: otherwise they all begin and end together
            # and each round is a burst, unlike many independent users.
            lengths = random.Random(index)
            await asyncio.sleep(index * 0.01)
            done = []
            while time.perf_counter() - started < seconds:
                body = _body(self.model, lengths.randint(WORDS // 2, WORDS * 3 // 2))
                done.append(await self.client.stream(body))
            return done

        try:
            if seconds is None:
                results = await asyncio.gather(
                    *(self.client.stream(self.body) for _ in range(concurrency))
                )
            else:
                per_client = await asyncio.gather(*(back_to_back(i) for i in range(concurrency)))
                results = [result for done in per_client for result in done]
        except StreamFailed as exc:
            raise CommandError(f"{self.url}: {exc}") from exc
        if any(r[0] is None for r in results):
            raise CommandError(f"{self.url}: a stream sent no content")
        if measure:
            self.wall += time.perf_counter() - started
            self.results += results
            if self.server_pid:
                self.server_cpu += tree_cpu_seconds(self.server_pid) - cpu_before

    def figures(self):
        ttfts = [r[0] for r in self.results]
        totals = [r[1] for r in self.results]
        rate = sum(r[2] for r in self.results) / self.wall
        return ttfts, totals, rate, self.server_cpu / max(1, len(self.results))


async def _compare(
    direct: _Side, gateway: _Side, concurrency: int, rounds: int, seconds: float | None = None
):
    """Rounds taken in turn, direct then gateway, so that load from elsewhere on the
    machine, which comes and goes, weighs on both alike."""
    sides = (direct, gateway)
    try:
        for side in sides:  # warm up, off the clock: connections, caches
            await side.client.open(concurrency)
            await side.round(concurrency, measure=False)
        for _ in range(rounds):
            for side in sides:
                await side.round(concurrency, seconds=seconds)
    finally:
        for side in sides:
            side.client.close()
    return direct.figures(), gateway.figures()


class Command(BaseCommand):
    help = "Gateway vs direct streaming: time to first token and total, p50/p99, overhead."

    def add_arguments(self, parser):
        parser.add_argument("--single", type=int, default=200, help="sequential streams")
        parser.add_argument("--rounds", type=int, default=5, help="rounds per side at 64")
        parser.add_argument("--seconds", type=float, default=4.0, help="length of a round")
        parser.add_argument("--concurrency", type=int, default=64)
        parser.add_argument(
            "--processes",
            type=int,
            default=1,
            help="server processes of the gateway (serve --processes; more than 1 needs Redis)",
        )
        parser.add_argument(
            "--cores",
            choices=("split", "shared"),
            help="split (the default with one gateway process on 2+ cores): the load "
            "generator and the fake upstreams run on the first core, the gateway on the "
            "others, so neither side's load slows the other; shared: all on all cores",
        )
        parser.add_argument(
            "--only",
            choices=("single", "paced", "burst"),
            help="take one of the three measurements (1 stream, N back to back, N at once)",
        )
        parser.add_argument(
            "--token-interval",
            type=float,
            default=10.0,
            help="ms the paced upstream waits before each chunk in the concurrent run (a "
            "real model takes 5-30 ms a token)",
        )

    def handle(self, *args, single, rounds, seconds, concurrency, token_interval, only, **opts):
        processes, cores = opts["processes"], opts["cores"]
        if processes > 1 and not settings.REDIS_URL:
            raise CommandError("A gateway of several processes needs Redis: set REDIS_URL.")
        all_cores = os.sched_getaffinity(0)
        if cores is None:
            cores = "split" if processes == 1 and len(all_cores) > 1 else "shared"
        if cores == "split" and len(all_cores) < 2:
            raise CommandError("--cores split needs at least 2 cores.")
        call_command("migrate", verbosity=0)
        bench_core = {min(all_cores)}
        if cores == "split":  # the fakes, started next, inherit it
            os.sched_setaffinity(0, bench_core)
        fakes = [_start_fake(0.0), _start_fake(token_interval / 1000)]
        server = None
        try:
            fast_url, paced_url = (fake.stdout.readline().strip() for fake in fakes)
            fast_key = self._bench_workspace(fast_url, "bench@orrery.local")
            paced_key = self._bench_workspace(paced_url, "bench-paced@orrery.local")
            port = _free_port()
            server = subprocess.Popen(  # noqa: S603 - our own manage.py
                [sys.executable, "manage.py", "serve", "--no-worker", "--port", str(port)]
                + ["--processes", str(processes)],
                cwd=settings.BASE_DIR,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "LOG_LEVEL": "WARNING"},
            )
            if cores == "split":
                os.sched_setaffinity(server.pid, all_cores - bench_core)
            gateway_url = f"http://127.0.0.1:{port}/v1/chat/completions"
            self._wait(f"http://127.0.0.1:{port}/api/health")
            cache = "Redis" if settings.REDIS_URL else "in-process"
            self.stdout.write(f"gateway: {processes} server process(es), {cache} cache")
            if cores == "split":
                self.stdout.write(
                    f"cores: load generator and fake upstreams on CPU {min(all_cores)}, "
                    f"gateway on CPU {','.join(map(str, sorted(all_cores - bench_core)))}"
                )
            runs = (
                ("single", "1 stream, upstream unpaced", fast_url, fast_key, 1, single, None),
                (
                    "paced",
                    f"{concurrency} streams, each client back to back for {seconds:g} s a "
                    f"round, upstream {token_interval:g} ms a token",
                    paced_url,
                    paced_key,
                    concurrency,
                    rounds,
                    seconds,
                ),
                (
                    "burst",
                    f"{concurrency} streams started at once, upstream unpaced (throughput)",
                    fast_url,
                    fast_key,
                    concurrency,
                    5,
                    None,
                ),
            )
            for name, label, upstream, key, n, r, secs in runs:
                if only not in (None, name):
                    continue
                direct = _Side(f"{upstream}/v1/chat/completions", FAKE_KEY, "gpt-4o-mini")
                relayed = _Side(gateway_url, key, "openai/gpt-4o-mini", server.pid)
                self._report(label, *asyncio.run(_compare(direct, relayed, n, r, secs)))
        finally:
            if server is not None:
                server.terminate()
                server.wait(timeout=30)
            for fake in fakes:
                fake.terminate()
                fake.wait(timeout=10)
            os.sched_setaffinity(0, all_cores)

    def _report(self, label, direct, relayed):
        out = self.stdout.write
        out(f"\n== {label}: {len(direct[0])} + {len(relayed[0])} streams ==")
        for name, (ttfts, totals, rate, _) in (("direct ", direct), ("gateway", relayed)):
            ttft = f"TTFT p50 {_ms(ttfts, 0.5)} p99 {_ms(ttfts, 0.99)}"
            total = f"total p50 {_ms(totals, 0.5)} p99 {_ms(totals, 0.99)}"
            out(f"{name}  {ttft}   {total}   {rate:8.0f} tokens/s")
        for q in (0.5, 0.99):
            added = (_pct(relayed[0], q) - _pct(direct[0], q)) * 1000
            ratio = _pct(relayed[0], q) / _pct(direct[0], q)
            out(f"added time to first token p{int(q * 100)}: {added:6.2f} ms ({ratio:.2f}x)")
        added_total = (_pct(relayed[1], 0.5) - _pct(direct[1], 0.5)) * 1000
        out(f"added total time p50: {added_total:6.2f} ms")
        out(f"gateway CPU per stream: {relayed[3] * 1000:.2f} ms")

    def _bench_workspace(self, fake_url: str, email: str) -> str:
        user = User.objects.filter(email=email).first() or user_create(
            email=email,
            password=secrets.token_urlsafe(16),  # nobody signs in as the bench user
            name="Bench",
        )
        owner = Membership.objects.filter(user=user, role=Role.OWNER).first()
        services.provider_credentials_save(
            actor=owner,
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_url},
        )
        _, key = api_key_create(actor=owner, name="bench", scope=ApiKeyScope.GATEWAY)
        return key

    @staticmethod
    def _wait(url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                httpx.get(url, timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise CommandError(f"{url} did not answer within {timeout:.0f} s")
