"""Ingest a real corpus end to end through the Dramatiq path and report throughput and the
share of time the platform spends outside the embedding call.

The corpus is the Python HTML manual from Debian's python3.11-doc package (nobody here
wrote it). Embeddings come from an OpenAI-compatible server started on a loopback port
that answers after a fixed latency, so the figures measure our platform, not a provider.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.core.management.base import BaseCommand, CommandError

DEFAULT_CORPUS = "/usr/share/doc/python3.11/html"
FAKE_KEY = "sk-bench"


class EmbeddingServer:
    """An OpenAI-compatible /v1/embeddings (plus /v1/models and a one-word chat reply for
    credential checks) that sleeps `latency` seconds per request. Vectors come from a
    precomputed pool, picked by a hash of the text, so the server costs almost nothing."""

    def __init__(self, *, latency: float, dimension: int):
        self.latency = latency
        self.requests = 0
        self.texts = 0
        self.sleep_seconds = 0.0
        self.intervals: list[tuple[float, float]] = []  # (start, end) of each request
        self._lock = threading.Lock()
        rng = random.Random(7)
        pool = []
        for _ in range(512):
            vector = [rng.gauss(0, 1) for _ in range(dimension)]
            norm = sum(x * x for x in vector) ** 0.5
            pool.append(json.dumps([round(x / norm, 6) for x in vector]))
        self._pool = pool
        self._server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> EmbeddingServer:
        bench = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, body: str) -> None:
                data = body.encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self):  # noqa: N802 - http.server's naming
                models = ["text-embedding-3-small", "gpt-4o-mini"]
                self._send(
                    json.dumps(
                        {"object": "list", "data": [{"id": m, "object": "model"} for m in models]}
                    )
                )

            def do_POST(self):  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path.endswith("/chat/completions"):
                    reply = {
                        "id": "chatcmpl-bench",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body.get("model"),
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": "ok"},
                                "finish_reason": "stop",
                            }
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                    self._send(json.dumps(reply))
                    return
                begun = time.perf_counter()
                texts = body.get("input") or []
                texts = [texts] if isinstance(texts, str) else texts
                time.sleep(bench.latency)
                with bench._lock:
                    bench.requests += 1
                    bench.texts += len(texts)
                    bench.sleep_seconds += bench.latency
                    bench.intervals.append((begun, time.perf_counter()))
                items = [
                    f'{{"object":"embedding","index":{i},"embedding":{bench._vector(text)}}}'
                    for i, text in enumerate(texts)
                ]
                tokens = sum(len(t) // 4 + 1 for t in texts)
                self._send(
                    '{"object":"list","data":['
                    + ",".join(items)
                    + '],"model":"'
                    + str(body.get("model"))
                    + f'","usage":{{"prompt_tokens":{tokens},"total_tokens":{tokens}}}}}'
                )

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def _vector(self, text: str) -> str:
        digest = hashlib.blake2b(text.encode(), digest_size=4).digest()
        return self._pool[int.from_bytes(digest, "big") % len(self._pool)]

    def busy_seconds(self, since: float, until: float) -> float:
        """Wall time within [since, until] with at least one request in flight."""
        busy, reach = 0.0, since
        for start, end in sorted(self.intervals):
            start, end = max(start, reach), min(end, until)
            if end > start:
                busy += end - start
                reach = end
        return busy

    def reset(self) -> None:
        with self._lock:
            self.requests, self.texts, self.sleep_seconds = 0, 0, 0.0
            self.intervals.clear()

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()


class Command(BaseCommand):
    help = (
        "Benchmark ingestion: index the Python HTML manual (apt-get install python3.11-doc) "
        "through the Dramatiq path against an embedding server with a fixed latency, and "
        "print documents/s, chunks/s and the share of time spent outside the embedding call."
    )

    def add_arguments(self, parser):
        parser.add_argument("--corpus", default=DEFAULT_CORPUS, help="folder of .html files")
        parser.add_argument("--limit", type=int, default=0, help="index at most this many files")
        parser.add_argument("--latency-ms", type=float, default=150.0, help="per embedding request")
        parser.add_argument("--dimension", type=int, default=384)
        parser.add_argument("--threads", type=int, default=4, help="indexing worker threads")
        parser.add_argument("--embed-batch", type=int, default=0, help="chunks per embedding call")
        parser.add_argument(
            "--local-model", default="", help="also run with this local model folder"
        )
        parser.add_argument("--keep", action="store_true", help="keep the benchmark workspace")

    def handle(
        self,
        *args,
        corpus,
        limit,
        latency_ms,
        dimension,
        threads,
        embed_batch,
        local_model,
        keep,
        **opts,
    ):
        paths = sorted(Path(corpus).rglob("*.html"))
        if not paths:
            raise CommandError(
                f"No .html files under {corpus}. "
                "Install the corpus: apt-get install -y python3.11-doc"
            )
        if limit:
            paths = paths[:limit]
        settings.ORRERY_INDEXING_CONCURRENCY = threads
        settings.ORRERY_INDEXING_RECONCILE_SECONDS = 0
        if embed_batch:
            settings.ORRERY_INDEXING_EMBED_BATCH = embed_batch
        server = EmbeddingServer(latency=latency_ms / 1000, dimension=dimension).start()
        try:
            self.stdout.write(
                f"corpus: {len(paths)} files, {sum(p.stat().st_size for p in paths) / 1e6:.1f} MB "
                f"from {corpus}; {threads} worker threads; embedding batch "
                f"{settings.ORRERY_INDEXING_EMBED_BATCH}"
            )
            self._run(
                paths,
                label=f"fake embeddings ({latency_ms:g} ms per request, {dimension} dims)",
                provider=(
                    "openai",
                    "text-embedding-3-small",
                    {"openai_api_key": FAKE_KEY, "openai_api_base": server.url},
                ),
                threads=threads,
                keep=keep,
                server=server,
            )
        finally:
            server.stop()
        if local_model:
            self._run(
                paths,
                label=f"local model {local_model}",
                provider=(
                    "local",
                    Path(local_model).name,
                    {
                        "model_path": str(Path(local_model).resolve()),
                        "device": "cpu",
                        "context_size": "512",
                        "max_chunks": "64",
                    },
                ),
                threads=threads,
                keep=keep,
                server=None,
            )

    # --- one run ------------------------------------------------------------------------
    def _run(self, paths, *, label, provider, threads, keep, server):
        import dramatiq

        from apps.datasets.models import Dataset, Document, Segment
        from apps.datasets.services.documents import document_create_from_files
        from apps.datasets.tasks import QUEUE
        from apps.providers import services as provider_services
        from apps.tenants import services as tenant_services
        from apps.tenants.models import Membership, Workspace

        stamp = time.strftime("%Y%m%d%H%M%S")
        user = tenant_services.user_create(
            email=f"bench-ingest-{stamp}-{random.randint(0, 9999)}@example.invalid",  # noqa: S311
            password=f"bench-{random.random()}-Aa1!",
            name="Ingest benchmark",
        )
        workspace: Workspace = user.current_workspace
        owner = Membership.objects.get(workspace=workspace, user=user)
        name, model, credentials = provider
        try:
            if name == "local":
                provider_services.custom_model_save(
                    actor=owner,
                    provider="local",
                    model_type="text-embedding",
                    model=model,
                    credentials=credentials,
                )
            else:
                provider_services.provider_credentials_save(
                    actor=owner, provider=name, credentials=credentials
                )
            provider_services.default_model_set(
                actor=owner, model_type="text-embedding", provider=name, model=model
            )
        except Exception as exc:
            workspace.delete()
            user.delete()
            raise CommandError(f"Could not set up {label}: {exc}") from exc
        dataset = Dataset.objects.create(
            workspace=workspace, name=f"Python manual {stamp}", created_by=user
        )

        broker = dramatiq.get_broker()
        worker = dramatiq.Worker(broker, queues={QUEUE}, worker_threads=threads)
        worker.start()
        started = time.perf_counter()
        documents = []
        try:
            size = settings.ORRERY_DATASET_MAX_BATCH_FILES
            for first in range(0, len(paths), size):
                handles = [path.open("rb") for path in paths[first : first + size]]
                try:
                    files = [
                        File(handle, name=path.name)
                        for handle, path in zip(handles, paths[first : first + size], strict=True)
                    ]
                    _, batch = document_create_from_files(actor=owner, dataset=dataset, files=files)
                    documents.extend(batch)
                finally:
                    for handle in handles:
                        handle.close()
            queued = time.perf_counter() - started
            ids = [d.pk for d in documents]
            while Document.objects.filter(
                pk__in=ids,
                indexing_status__in=("waiting", "parsing", "cleaning", "splitting", "indexing"),
            ).exists():
                time.sleep(0.2)
            finished = time.perf_counter()
            wall = finished - started
        finally:
            worker.stop(timeout=10_000)
            broker.middleware[:] = [
                m for m in broker.middleware if getattr(m, "worker", None) is not worker
            ]

        rows = list(
            Document.objects.filter(pk__in=ids).values(
                "indexing_status", "indexing_ms", "embedding_ms", "error", "name"
            )
        )
        done = [r for r in rows if r["indexing_status"] == "completed"]
        failed = [r for r in rows if r["indexing_status"] != "completed"]
        chunks = Segment.objects.filter(dataset=dataset).count()
        total_ms = sum(r["indexing_ms"] for r in done)
        embed_ms = sum(r["embedding_ms"] for r in done)
        outside = (total_ms - embed_ms) / total_ms if total_ms else 0.0

        out = self.stdout.write
        out(f"\n== {label}")
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        out(f"machine: {os.cpu_count()} CPUs, load average {load} (other work slows every step)")
        out(f"documents: {len(done)} completed, {len(failed)} failed; chunks: {chunks}")
        out(f"wall time: {wall:.1f} s (uploads stored and queued in {queued:.1f} s)")
        out(f"throughput: {len(done) / wall:.1f} documents/s, {chunks / wall:.0f} chunks/s")
        out(
            f"per document, summed: {total_ms / 1000:.1f} s indexing, of which "
            f"{embed_ms / 1000:.1f} s inside the embedding call"
        )
        out(
            self.style.SUCCESS(
                f"share of each document's indexing time outside the embedding call: "
                f"{outside:.1%} (target < 20%)"
            )
        )
        if server is not None and server.requests:
            busy = server.busy_seconds(started, finished)
            out(
                f"embedding server: {server.requests} requests, {server.texts} texts; "
                f"{server.sleep_seconds:.1f} s of fixed latency; the model runtime added "
                f"{embed_ms / 1000 - server.sleep_seconds:.1f} s inside the calls (HTTP, JSON, "
                "credentials, usage records)"
            )
            out(
                self.style.SUCCESS(
                    f"share of wall time with no embedding request in flight (platform time "
                    f"not hidden behind the model): {(wall - busy) / wall:.1%}"
                )
            )
        for row in failed[:5]:
            self.stdout.write(f"  failed: {row['name']}: {row['error']}")
        if not keep:
            from django.core.files.storage import default_storage

            for document in Document.objects.filter(pk__in=ids).only("file"):
                if document.file:
                    default_storage.delete(document.file.name)
            workspace.delete()
            user.delete()
