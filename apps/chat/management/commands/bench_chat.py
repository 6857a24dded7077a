"""Benchmark: N concurrent chats through Orrery — over the web app's websocket and over the
Service API's streaming `/v1/chat-messages` — against N streams taken straight from the
same upstream, in one run.

The upstream is the fake OpenAI server from tests/fakes (this is a development tool, run
from a checkout) in its own process, answering each chat with 300 tokens at a steady pace
(`--token-ms`). The server is the real one (`manage.py serve`, daphne) on the embedded
database, with a bench workspace whose OpenAI credentials point at the fake and a fresh
chat app made for the run (deleted afterwards with its messages).

Phases run one after another, each with N clients started over `--ramp` seconds:
  upstream  N streams to the fake directly: the upstream's own time to first token;
  sse       N `POST /v1/chat-messages` (response_mode streaming) with an app key;
  websocket N web-app visitors, each opens the page, connects its websocket and sends a
            message; the answer comes back as HTML fragments.
It prints time to first token and total time (p50/p99), frames and tokens per second,
errors, the server's peak memory (VmHWM of its process) and CPU per chat, how many
streams were open at once, and the time each path adds to the first token over the
upstream's own.

The defaults make N chats stream at the same time, as N people would: a model's pace
(30 ms a token, about what hosted models write), answers of 9 s, and the N starting
over 5 s, so all are open together ("at once" = N). `--ramp 1 --token-ms 10` asks for
more than one process on this machine can give (200 turns begun within a second, while
200 answers stream at 100 tokens a second): it shows where the capacity ends."""

from __future__ import annotations

import asyncio
import html
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from apps.core.management.proc import cpu_seconds, rss_kb

FAKE_KEY = "sk-bench-key"
MODEL = "gpt-4o-mini"
SYSTEM_PROMPT = "You are a helpful assistant."
_TOKEN = re.compile(r"\s*\S+")  # the fake's tokens: words with their leading space
_WS_CONNECT = re.compile(r'ws-connect="([^"]+)"')


def _fake_script(token_seconds: float) -> str:
    """The fake in its own interpreter (it needs no Django): prints its URL, then serves."""
    return (
        "import time\n"
        "from tests.fakes.openai import FakeOpenAI\n"
        f"fake = FakeOpenAI(api_key={FAKE_KEY!r}, chunk_delay={token_seconds!r}).start()\n"
        "print(fake.url, flush=True)\n"
        "while True:\n"
        "    time.sleep(3600)\n"
    )


def query_for(tokens: int) -> str:
    """A question the fake answers with exactly `tokens` tokens ("You said: " + it)."""
    return " ".join(f"w{i}" for i in range(1, tokens - 1))


def count_tokens(text: str) -> int:
    return len(_TOKEN.findall(text))


@dataclass
class Stream:
    """One client's stream: when its first token came, when it ended, what it carried."""

    ttft: float | None = None
    total: float | None = None
    frames: int = 0
    tokens: int = 0
    error: str = ""
    span: tuple[float, float] = (0.0, 0.0)  # when the client started and ended (perf_counter)


@dataclass
class Phase:
    name: str
    streams: list[Stream] = field(default_factory=list)
    wall: float = 0.0
    peak_rss_kb: int | None = None
    server_cpu: float = 0.0  # seconds of the server process's CPU during the phase
    upstream_cpu: float = 0.0  # and of the fake upstream's

    @property
    def ok(self) -> list[Stream]:
        return [s for s in self.streams if not s.error and s.ttft is not None]

    @property
    def errors(self) -> list[str]:
        return [s.error or "no answer text arrived" for s in self.streams if s not in self.ok]


def peak_in_flight(streams: list[Stream]) -> int:
    """The most streams that were open at the same moment."""
    edges = sorted([(s.span[0], 1) for s in streams] + [(s.span[1], -1) for s in streams])
    peak = current = 0
    for _, step in edges:
        current += step
        peak = max(peak, current)
    return peak


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


# --- Clients ------------------------------------------------------------------------------


async def _stagger(index: int, n: int, ramp: float) -> None:
    if ramp and n > 1:
        await asyncio.sleep(ramp * index / (n - 1))


async def upstream_stream(client: httpx.AsyncClient, url: str, query: str) -> Stream:
    body = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": query},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    out = Stream()
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {FAKE_KEY}"}
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            out.error = f"HTTP {response.status_code}"
            return out
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            out.frames += 1
            chunk = json.loads(line[6:])
            content = chunk["choices"][0]["delta"].get("content") if chunk["choices"] else ""
            if content:
                out.tokens += 1
                if out.ttft is None:
                    out.ttft = time.perf_counter() - started
    out.total = time.perf_counter() - started
    return out


async def sse_stream(client: httpx.AsyncClient, url: str, key: str, query: str, user: str):
    # No title for the conversation: its extra model call is not part of the chat measured.
    body = {"inputs": {}, "query": query, "response_mode": "streaming", "user": user}
    body["auto_generate_name"] = False
    out = Stream()
    answer = ""
    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {key}"}
    async with client.stream("POST", url, json=body, headers=headers) as response:
        if response.status_code != 200:
            out.error = f"HTTP {response.status_code}: {(await response.aread())[:200]!r}"
            return out
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            event = json.loads(line[6:])
            kind = event.get("event")
            if kind == "message":
                out.frames += 1
                answer += event.get("answer", "")
                if out.ttft is None and event.get("answer"):
                    out.ttft = time.perf_counter() - started
            elif kind == "message_replace":
                answer = event.get("answer", "")
            elif kind == "error":
                out.error = f"error event: {event.get('code')}: {event.get('message')}"
                return out
            elif kind == "message_end":
                break
    out.total = time.perf_counter() - started
    out.tokens = count_tokens(answer)
    return out


@dataclass
class Visitor:
    """A browser on the app's page with its websocket open, ready to send."""

    socket: object | None = None
    error: str = ""


# The web app admits at most 120 new visitors a minute from one address: the visitors
# come from as many loopback addresses (127.0.0.2, .3 …) as that takes, as real ones
# come from many.
VISITORS_PER_ADDRESS = 100


async def ws_open(base: str, site_path: str, timeout: float, index: int = 0) -> Visitor:
    """Open the page (which makes the visitor and names its websocket), then connect. Not
    timed: a page holds its socket open before anyone types."""
    import websockets  # a client library; only this phase needs it

    address = f"127.0.0.{2 + index // VISITORS_PER_ADDRESS}"
    transport = httpx.AsyncHTTPTransport(local_address=address)
    # A browser of its own: its own cookies, so each client is a separate visitor.
    async with httpx.AsyncClient(base_url=base, timeout=timeout, transport=transport) as http:
        page = await http.get(site_path)
    found = _WS_CONNECT.search(page.text) if page.status_code == 200 else None
    if not found:
        return Visitor(error=f"page {site_path}: HTTP {page.status_code}, no ws-connect")
    ws_url = base.replace("http", "ws", 1) + html.unescape(found.group(1))
    socket = await websockets.connect(
        ws_url, origin=base, max_size=None, open_timeout=timeout, compression=None
    )
    return Visitor(socket=socket)


async def ws_chat(visitor: Visitor, query: str) -> Stream:
    """Send the message and read fragments until the finished turn arrives."""
    out = Stream()
    if visitor.socket is None:
        out.error = visitor.error
        return out
    ws = visitor.socket
    last_word = query.rsplit(" ", 1)[-1]
    started = time.perf_counter()
    await ws.send(json.dumps({"action": "send", "query": query, "conversation_id": ""}))
    async for frame in ws:
        out.frames += 1
        if out.ttft is None and 'hx-swap-oob="innerHTML"' in frame:
            out.ttft = time.perf_counter() - started
        if 'data-testid="chat-error"' in frame or 'data-status="error"' in frame:
            text = re.sub(r"<[^>]+>", " ", frame)
            out.error = "error fragment: " + " ".join(text.split())[:200]
            return out
        if 'data-status="normal"' in frame or 'data-status="stopped"' in frame:
            if last_word not in frame:
                out.error = "the finished answer is incomplete"
                return out
            if out.ttft is None:  # a short answer may end before a partial one is sent
                out.ttft = time.perf_counter() - started
            break
    else:
        out.error = "the socket closed before the answer finished"
        return out
    out.total = time.perf_counter() - started
    out.tokens = count_tokens("You said: " + query)
    return out


async def run_phase(name: str, n: int, ramp: float, timeout: float, make) -> Phase:
    """`make(i)` returns the coroutine of client i; errors are caught per client."""

    async def one(index: int) -> Stream:
        await _stagger(index, n, ramp)
        began = time.perf_counter()
        try:
            stream = await asyncio.wait_for(make(index), timeout)
        except TimeoutError:
            stream = Stream(error=f"no end within {timeout:.0f} s")
        except Exception as exc:  # a client's failure is a figure, not a crash
            stream = Stream(error=f"{type(exc).__name__}: {exc}"[:300])
        stream.span = (began, time.perf_counter())
        return stream

    started = time.perf_counter()
    streams = await asyncio.gather(*(one(i) for i in range(n)))
    return Phase(name=name, streams=list(streams), wall=time.perf_counter() - started)


# --- The command --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Command(BaseCommand):
    help = "N websocket chats and N SSE chats through Orrery vs N streams from the upstream."

    def add_arguments(self, parser):
        parser.add_argument("--n", type=int, default=200, help="concurrent chats per phase")
        parser.add_argument("--tokens", type=int, default=300, help="tokens per answer")
        parser.add_argument(
            "--token-ms", type=float, default=30.0, help="the upstream's pace between tokens"
        )
        parser.add_argument(
            "--ramp", type=float, default=5.0, help="seconds over which the N clients start"
        )
        parser.add_argument("--timeout", type=float, default=120.0, help="seconds per chat")
        parser.add_argument(
            "--phases",
            default="upstream,sse,websocket",
            help="comma-separated: upstream, sse, websocket",
        )

    def handle(self, *args, n, tokens, token_ms, ramp, timeout, phases, **opts):
        wanted = [p.strip() for p in phases.split(",") if p.strip()]
        unknown = set(wanted) - {"upstream", "sse", "websocket"}
        if unknown or n < 1 or tokens < 3:
            raise CommandError("Give --n ≥ 1, --tokens ≥ 3, phases among upstream,sse,websocket.")
        call_command("migrate", verbosity=0)
        fake = subprocess.Popen(  # noqa: S603 - our own fake
            [sys.executable, "-c", _fake_script(token_ms / 1000)],
            cwd=settings.BASE_DIR,
            stdout=subprocess.PIPE,
            text=True,
        )
        server = None
        bench = None
        try:
            fake_url = fake.stdout.readline().strip()
            if not fake_url:
                raise CommandError("The fake upstream did not start.")
            bench = BenchApp.create(fake_url)
            port = _free_port()
            log_path = Path(settings.VAR_DIR) / "bench_chat_server.log"
            with log_path.open("wb") as log:
                server = subprocess.Popen(  # noqa: S603 - our own manage.py
                    [sys.executable, "manage.py", "serve", "--no-worker", "--no-migrate"]
                    + ["--host", "127.0.0.1", "--port", str(port)],
                    cwd=settings.BASE_DIR,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "LOG_LEVEL": "WARNING"},
                )
            base = f"http://127.0.0.1:{port}"
            self._wait(f"{base}/api/health", server)
            idle_kb = rss_kb(server.pid, "VmRSS")
            query = query_for(tokens)
            results = asyncio.run(
                self._phases(
                    wanted, n, ramp, timeout, base, fake_url, bench, query, (server.pid, fake.pid)
                )
            )
            self._report(results, n=n, tokens=tokens, token_ms=token_ms, ramp=ramp, idle=idle_kb)
            if any(phase.errors for phase in results):
                self.stdout.write(f"the server's log: {log_path}")
        finally:
            if server is not None:
                server.terminate()
                try:
                    server.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    server.kill()
            fake.terminate()
            fake.wait(timeout=10)
            if bench is not None:
                bench.delete()

    async def _phases(self, wanted, n, ramp, timeout, base, fake_url, bench, query, pids):
        pid, fake_pid = pids
        limits = httpx.Limits(max_connections=n + 8, max_keepalive_connections=n + 8)
        results: list[Phase] = []
        async with httpx.AsyncClient(timeout=timeout, limits=limits) as client:
            for name in wanted:
                if name == "upstream":
                    upstream_url = f"{fake_url}/v1/chat/completions"

                    def make(i, url=upstream_url):
                        return upstream_stream(client, url, query)
                elif name == "sse":
                    sse_url = f"{base}/v1/chat-messages"

                    def make(i, url=sse_url):
                        return sse_stream(client, url, bench.key, query, f"bench-{i}")
                else:
                    visitors = await self._open_visitors(n + 1, base, bench.site_path, timeout)
                    opened = [v.socket for v in visitors if v.socket is not None]

                    def make(i, pool=visitors):
                        return ws_chat(pool.pop(), query)

                # One chat first, not counted: connections, caches and imports warm up.
                warm = await run_phase(name, 1, 0, timeout, make)
                if warm.errors:
                    self.stdout.write(f"warm-up {name} failed: {warm.errors[0]}")
                self.stdout.write(f"running {name}: {n} chats …")
                cpu_before = cpu_seconds(pid), cpu_seconds(fake_pid)
                phase = await run_phase(name, n, ramp, timeout, make)
                phase.server_cpu = cpu_seconds(pid) - cpu_before[0]
                phase.upstream_cpu = cpu_seconds(fake_pid) - cpu_before[1]
                phase.peak_rss_kb = rss_kb(pid)
                results.append(phase)
                if name == "websocket":
                    await asyncio.gather(*(ws.close() for ws in opened), return_exceptions=True)
        return results

    @staticmethod
    async def _open_visitors(count: int, base: str, site_path: str, timeout: float):
        """`count` visitors with their sockets open (opened 20 at a time)."""
        gate = asyncio.Semaphore(20)

        async def one(index: int) -> Visitor:
            async with gate:
                try:
                    return await ws_open(base, site_path, timeout, index)
                except Exception as exc:  # counted as that client's error
                    return Visitor(error=f"connect: {type(exc).__name__}: {exc}"[:300])

        return list(await asyncio.gather(*(one(i) for i in range(count))))

    def _report(self, results: list[Phase], *, n, tokens, token_ms, ramp, idle):
        out = self.stdout.write
        out(
            f"\n== bench_chat: N={n}, {tokens} tokens per answer, upstream {token_ms:g} ms per "
            f"token, clients started over {ramp:g} s, {os.cpu_count()} CPUs =="
        )
        out(
            f"{'path':<10}{'ok':>5}{'err':>5}  {'TTFT p50':>9}{'p99':>9}  {'total p50':>10}"
            f"{'p99':>9}  {'frames/chat':>11}{'frames/s':>9}{'tokens/s':>9}  {'peak RSS':>9}"
            f"{'server CPU/chat':>16}{'at once':>8}"
        )
        for phase in results:
            ok = phase.ok
            ttfts = [s.ttft for s in ok]
            totals = [s.total for s in ok if s.total is not None]
            frames = sum(s.frames for s in ok)
            rss = f"{phase.peak_rss_kb / 1024:6.0f} MB" if phase.peak_rss_kb else "   n/a"
            out(
                f"{phase.name:<10}{len(ok):>5}{len(phase.errors):>5}  "
                f"{pct(ttfts, 0.5) * 1000:7.1f}ms{pct(ttfts, 0.99) * 1000:7.1f}ms  "
                f"{pct(totals, 0.5) * 1000:8.0f}ms{pct(totals, 0.99) * 1000:7.0f}ms  "
                f"{frames / max(1, len(ok)):11.1f}{frames / phase.wall:9.0f}"
                f"{sum(s.tokens for s in ok) / phase.wall:9.0f}  {rss:>9}"
                f"{phase.server_cpu * 1000 / max(1, len(phase.streams)):13.1f} ms"
                f"{peak_in_flight(phase.streams):8d}"
            )
        if idle:
            out(f"server RSS when idle, before the phases: {idle / 1024:.0f} MB")
        out(
            "CPU of the fake upstream per phase (it shares the machine): "
            + ", ".join(f"{p.name} {p.upstream_cpu:.1f} s" for p in results)
        )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        out(f"load average at the end (1, 5, 15 min): {load} on {os.cpu_count()} CPUs")
        for phase in results:
            if phase.errors:
                sample = sorted(set(phase.errors))[:3]
                out(f"{phase.name} errors ({len(phase.errors)}): " + " | ".join(sample))
        by_name = {p.name: p for p in results}
        upstream = by_name.get("upstream")
        for name in ("sse", "websocket"):
            phase = by_name.get(name)
            if not (upstream and upstream.ok and phase and phase.ok):
                continue
            for q in (0.5, 0.99):
                mine = pct([s.ttft for s in phase.ok], q)
                theirs = pct([s.ttft for s in upstream.ok], q)
                out(
                    f"added time to first token, {name} p{int(q * 100)}: "
                    f"{(mine - theirs) * 1000:6.1f} ms (upstream's own {theirs * 1000:.1f} ms)"
                )
        ws = by_name.get("websocket")
        if ws and upstream and ws.ok and upstream.ok:
            added = pct([s.ttft for s in ws.ok], 0.5) - pct([s.ttft for s in upstream.ok], 0.5)
            verdict = "met" if not ws.errors and added < 0.020 else "NOT met"
            out(
                f"target (websocket: {n} chats, 0 errors, added TTFT p50 < 20 ms): {verdict} "
                f"({len(ws.errors)} errors, {added * 1000:.1f} ms)"
            )

    @staticmethod
    def _wait(url: str, server: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError(f"The server exited with code {server.returncode}.")
            try:
                httpx.get(url, timeout=2)
                return
            except httpx.TransportError:
                time.sleep(0.1)
        raise CommandError(f"{url} did not answer within {timeout:.0f} s")


@dataclass
class BenchApp:
    """The run's workspace, app and key; the app is deleted at the end with its messages."""

    app_id: str
    key: str
    site_path: str

    @classmethod
    def create(cls, fake_url: str) -> BenchApp:
        from apps.chat.config import default_config
        from apps.chat.keys import app_api_key_create
        from apps.chat.services.apps import app_create
        from apps.providers import services
        from apps.tenants.models import Membership, Role, User
        from apps.tenants.services import user_create

        user = User.objects.filter(email="bench@orrery.local").first() or user_create(
            email="bench@orrery.local",
            password=secrets.token_urlsafe(16),  # nobody signs in as the bench user
            name="Bench",
        )
        owner = Membership.objects.filter(user=user, role=Role.OWNER).first()
        services.provider_credentials_save(
            actor=owner,
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": fake_url},
        )
        config = default_config("chat", provider="openai", model=MODEL)
        config["pre_prompt"] = SYSTEM_PROMPT
        app = app_create(
            actor=owner, name=f"bench {secrets.token_hex(3)}", mode="chat", config=config
        )
        _, key = app_api_key_create(actor=owner, app=app, name="bench")
        return cls(app_id=str(app.pk), key=key, site_path=f"/chat/{app.site_code}")

    def delete(self) -> None:
        from apps.chat.models import App

        App.objects.filter(pk=self.app_id).delete()
