"""Benchmark: search latency and HNSW recall over 100,000+ chunks of a real corpus.

The corpus is the Python 3.11 manual from Debian's python3.11-doc package (HTML under
/usr/share/doc/python3.11/html), cut into overlapping word windows until there are enough
chunks. Vectors come from a deterministic local embedding (tests/fakes/word_vectors.py:
a sparse random projection of word counts, so related texts are close); the rows are
bulk-loaded with COPY, since this measures search, not ingest. Then:

- semantic, full-text and hybrid search latency (p50/p99) end to end through `retrieve()`,
  the query embedded through the model runtime by the fake OpenAI server (same
  embedding) in its own process on a loopback port;
- recall@10 of the HNSW index against exact search, for pgvector's default ef_search (40)
  and ours.

Everything happens in a database of its own, created and dropped by the command (this is
a development tool: run it from a checkout, it imports tests/fakes)."""

from __future__ import annotations

import asyncio
import glob
import hashlib
import io
import os
import random
import statistics
import subprocess
import sys
import time
import uuid

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, connections, transaction

CORPUS = "/usr/share/doc/python3.11/html"
BENCH_DB = "orrery_bench_retrieval"
FAKE_KEY = "sk-bench-key"
WINDOW = 60  # words per chunk
FAKE_SCRIPT = """
import sys, time
from tests.fakes.openai import FakeOpenAI
fake = FakeOpenAI(api_key={key!r}, embeddings={kind!r}, embedding_dimension={dim}).start()
print(fake.url, flush=True)
while True:
    time.sleep(3600)
"""


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


class Command(BaseCommand):
    help = "Search latency and HNSW recall@10 over 100k chunks of the Python manual."

    def add_arguments(self, parser):
        parser.add_argument("--chunks", type=int, default=100_000)
        parser.add_argument("--queries", type=int, default=200)
        parser.add_argument("--dim", type=int, default=384)
        parser.add_argument("--keep", action="store_true", help="keep the bench database")
        parser.add_argument(
            "--embedding",
            choices=["topics", "words"],
            default="topics",
            help="topics: words plus shared subject directions, closer to a real model; "
            "words: hashed words alone, the hardest case for HNSW",
        )

    def handle(self, *args, chunks, queries, dim, keep, embedding, **options):
        if not glob.glob(f"{CORPUS}/*.html"):
            raise CommandError(
                f"No corpus at {CORPUS}: apt-get install -y python3.11-doc (Debian/Ubuntu)."
            )
        self.dim, self.embedding = dim, embedding
        original = settings.DATABASES["default"]["NAME"]
        fake = None
        self._create_database()
        try:
            self._use_database(BENCH_DB)
            started = time.perf_counter()
            call_command("migrate", verbosity=0)
            self.say(f"Bench database {BENCH_DB} migrated in {time.perf_counter() - started:.1f} s")
            fake, url = self._start_fake()
            workspace, dataset = self._workspace(url)
            texts = self._load(dataset, chunks)
            self._index()
            sample = self._queries(texts, queries)
            self._latency(workspace, dataset, sample)
            self._recall(workspace, dataset, sample)
        finally:
            if fake is not None:
                fake.kill()
            self._use_database(original)
            if not keep:
                with connection.cursor() as cursor:
                    cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
                self.say(f"Dropped {BENCH_DB}.")

    def say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    # --- setup ---------------------------------------------------------------------
    def _create_database(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{BENCH_DB}" WITH (FORCE)')
            cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')

    def _use_database(self, name: str) -> None:
        connections["default"].close()
        settings.DATABASES["default"]["NAME"] = name
        connections["default"].settings_dict["NAME"] = name

    def _start_fake(self):
        script = FAKE_SCRIPT.format(key=FAKE_KEY, dim=self.dim, kind=self.embedding)
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and script
            [sys.executable, "-c", script],
            stdout=subprocess.PIPE,
            text=True,
            cwd=settings.BASE_DIR,
        )
        url = process.stdout.readline().strip()
        if not url:
            raise CommandError("The fake embedding server did not start.")
        return process, url

    def _workspace(self, url: str):
        from apps.datasets.models import Dataset  # after the switch to the bench database
        from apps.providers import services
        from apps.tenants.models import Membership
        from apps.tenants.services import user_create

        user = user_create(email="bench@example.com", password=uuid.uuid4().hex + "Aa1!")
        membership = Membership.objects.get(user=user)
        services.provider_credentials_save(
            actor=membership,
            provider="openai",
            credentials={"openai_api_key": FAKE_KEY, "openai_api_base": url},
        )
        dataset = Dataset.objects.create(
            workspace=membership.workspace,
            name="Python 3.11 manual",
            embedding_model_provider="openai",
            embedding_model="text-embedding-3-small",
        )
        return membership.workspace, dataset

    def _corpus(self) -> list[tuple[str, list[str]]]:
        import lxml.html  # only this command reads HTML this way

        pages = []
        for path in sorted(glob.glob(f"{CORPUS}/**/*.html", recursive=True)):
            root = lxml.html.parse(path).getroot()
            main = root.xpath('//div[@role="main"]') or root.xpath('//div[@class="body"]')
            words = (main[0] if main else root).text_content().split()
            if len(words) >= 20:
                pages.append((path.removeprefix(CORPUS + "/"), words))
        return pages

    def _windows(self, pages, target: int) -> list[tuple[int, str]]:
        """(page index, text) windows of WINDOW words, with the largest stride that still
        gives `target` chunks: the manual is ~1.5M words, so windows overlap."""
        for stride in range(WINDOW, 0, -1):
            count = sum(max(1, (len(w) - WINDOW) // stride + 1) for _, w in pages)
            if count >= target:
                break
        windows = []
        for index, (_, words) in enumerate(pages):
            last = max(1, (len(words) - WINDOW) // stride + 1)
            for n in range(last):
                windows.append((index, " ".join(words[n * stride : n * stride + WINDOW])))
        step = len(windows) / target
        return [windows[int(i * step)] for i in range(min(target, len(windows)))]

    def _load(self, dataset, target: int) -> list[str]:
        from apps.datasets.models import DataSourceType, Document, IndexingStatus
        from apps.datasets.text_search import TEXT_SEARCH_CONFIG

        started = time.perf_counter()
        embed = self._embed_function()
        pages = self._corpus()
        windows = self._windows(pages, target)
        if len(windows) < target:
            raise CommandError(f"The corpus gives only {len(windows)} chunks.")
        self.say(
            f"Corpus: {len(pages)} pages, {sum(len(w) for _, w in pages):,} words → "
            f"{len(windows):,} chunks of {WINDOW} words ({time.perf_counter() - started:.1f} s)"
        )
        documents = Document.objects.bulk_create(
            Document(
                workspace_id=dataset.workspace_id,
                dataset=dataset,
                name=name,
                data_source_type=DataSourceType.UPLOAD_FILE,
                batch="bench",
                indexing_status=IndexingStatus.COMPLETED,
            )
            for name, _ in pages
        )
        started = time.perf_counter()
        buffer = io.StringIO()
        positions: dict[int, int] = {}
        model = "openai/text-embedding-3-small"
        for page, text in windows:
            positions[page] = positions.get(page, 0) + 1
            vector = "[" + ",".join(f"{x:.6g}" for x in embed(text, self.dim)) + "]"
            row = (
                str(uuid.uuid4()),
                str(dataset.workspace_id),
                str(dataset.pk),
                str(documents[page].pk),
                str(positions[page]),
                text.replace("\\", "\\\\").replace("\t", " "),
                str(len(text)),
                str(len(text.split())),
                hashlib.sha256(text.encode()).hexdigest(),
                vector,
                str(self.dim),
                model,
            )
            buffer.write("\t".join(row) + "\n")
        elapsed = time.perf_counter() - started
        self.say(
            f"Embedded {len(windows):,} chunks locally ({self.embedding}, {self.dim} dimensions)"
            f" in {elapsed:.1f} s"
        )
        started = time.perf_counter()
        columns = (
            "id, workspace_id, dataset_id, document_id, position, content, word_count, tokens,"
            " content_hash, embedding, embedding_dim, embedding_model"
        )
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE TEMP TABLE bench_rows ({columns.replace(',', ' text,')} text)")
            with cursor.cursor.copy(f"COPY bench_rows ({columns}) FROM STDIN") as copy:
                copy.write(buffer.getvalue())
            cursor.execute("DROP INDEX IF EXISTS segment_search_vector_gin")
            cursor.execute(
                "INSERT INTO datasets_segment (id, workspace_id, created_at, updated_at,"
                " dataset_id, document_id, parent_id, position, content, answer, keywords,"
                " word_count, tokens, content_hash, enabled, searchable, hit_count, embedding,"
                " embedding_dim, embedding_model, search_vector)"
                " SELECT id::uuid, workspace_id::uuid, now(), now(), dataset_id::uuid,"
                " document_id::uuid, NULL, position::int, content, '', '[]'::jsonb,"
                " word_count::int, tokens::int, content_hash, true, true, 0,"
                " embedding::vector, embedding_dim::int, embedding_model,"
                " setweight(to_tsvector(%s::regconfig, content), 'A') FROM bench_rows",
                [TEXT_SEARCH_CONFIG],
            )
            cursor.execute(
                "CREATE INDEX segment_search_vector_gin ON datasets_segment"
                " USING gin (search_vector)"
            )
            cursor.execute("DROP TABLE bench_rows")
            cursor.execute("VACUUM ANALYZE datasets_segment")
        self.say(f"Loaded rows (COPY, tsvector, GIN) in {time.perf_counter() - started:.1f} s")
        return [text for _, text in windows]

    def _embed_function(self):
        from tests.fakes import word_vectors  # the fake server embeds queries the same way

        return word_vectors.topic_vector if self.embedding == "topics" else word_vectors.word_vector

    def _index(self) -> None:
        from apps.datasets.vector_index import ensure_vector_index

        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '1GB'")
            cursor.execute("SET max_parallel_maintenance_workers = 1")
        ensure_vector_index(self.dim)
        with connection.cursor() as cursor:
            cursor.execute("RESET maintenance_work_mem")
            cursor.execute("ANALYZE datasets_segment")
        self.say(
            f"Built the HNSW index for width {self.dim} (m=16, ef_construction=64) in "
            f"{time.perf_counter() - started:.1f} s"
        )

    def _queries(self, texts: list[str], count: int) -> list[str]:
        """Questions made of a run of words from a random chunk, some phrased as a
        question, a few with one word swapped for a word from elsewhere."""
        rng = random.Random(20261124)  # noqa: S311 - a fixed sample, not a secret
        questions = []
        for n in range(count):
            words = [w.strip(".,:;()[]'\"`") for w in rng.choice(texts).split()]
            words = [w for w in words if w.isalpha()]
            if len(words) < 8:
                words = rng.choice(texts).split()
            start = rng.randrange(max(1, len(words) - 6))
            phrase = " ".join(words[start : start + rng.randint(3, 6)])
            questions.append(f"how do I {phrase}" if n % 3 == 0 else phrase)
        return questions

    # --- measurements -----------------------------------------------------------------
    def _latency(self, workspace, dataset, sample: list[str]) -> None:
        asyncio.run(self._alatency(workspace, dataset, sample))

    async def _alatency(self, workspace, dataset, sample: list[str]) -> None:
        """Calls go the way the chat pipeline makes them: `offload(retrieve)` from an event
        loop, so the model runtime's HTTP client, pool threads and their database
        connections live across queries, as in the server."""
        from apps.core.offload import offload
        from apps.datasets.retrieval import retrieve
        from apps.providers.instance import ModelInstance

        embedder = ModelInstance(
            workspace=workspace,
            provider="openai",
            model="text-embedding-3-small",
            model_type="text-embedding",
            source="bench",
        )

        async def search(query: str, method: str) -> list:
            return await offload(retrieve)(
                workspace=workspace,
                datasets=[dataset],
                query=query,
                retrieval_model={"search_method": method, "top_k": 10},
            )

        for query in sample[:20]:  # warm the caches, the connection pool and the index
            await embedder.invoke_text_embedding([query], input_type="query")
            await search(query, "hybrid_search")
        embed = []
        for query in sample:
            started = time.perf_counter()
            await embedder.invoke_text_embedding([query], input_type="query")
            embed.append(time.perf_counter() - started)
        self.say(
            f"\nSearch latency over {len(sample)} queries, {await offload(self._chunk_count)():,}"
            " chunks, top_k 10, end to end through retrieve() (called as the chat pipeline"
            " calls it, offloaded from an event loop); the query is embedded through the model"
            " runtime by the fake OpenAI server, in its own process on a loopback port:"
        )
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        self.say(f"  (machine: {os.cpu_count()} cores, load average {load})")
        self.say(
            f"  {'query embedding alone':<22} p50 {_pct(embed, 0.5) * 1000:6.2f} ms   "
            f"p99 {_pct(embed, 0.99) * 1000:6.2f} ms"
        )
        for method in ("hybrid_search", "semantic_search", "full_text_search"):
            timings, empty = [], 0
            for query in sample:
                started = time.perf_counter()
                records = await search(query, method)
                timings.append(time.perf_counter() - started)
                empty += not records
            self.say(
                f"  {method:<22} p50 {_pct(timings, 0.5) * 1000:6.2f} ms   "
                f"p99 {_pct(timings, 0.99) * 1000:6.2f} ms   mean "
                f"{statistics.mean(timings) * 1000:6.2f} ms   (no results: {empty})"
            )

    def _chunk_count(self) -> int:
        from apps.datasets.models import Segment

        return Segment.objects.count()

    def _recall(self, workspace, dataset, sample: list[str]) -> None:
        from apps.datasets import search

        scope = search.Scope(workspace_id=workspace.pk, dataset_ids=[dataset.pk])
        embed = self._embed_function()
        vectors = [embed(q, self.dim) for q in sample]
        exact = []
        started = time.perf_counter()
        for vector in vectors:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    cursor.execute("SET LOCAL enable_indexscan = off")
                exact.append(search.nearest(scope, vector, 10))
        exact_ms = (time.perf_counter() - started) / len(vectors) * 1000
        self.say(f"\nHNSW recall@10 against exact search (exact: {exact_ms:.1f} ms a query):")
        self.say(f"  {self._plan(scope, vectors[0])}")
        configured = search.EF_SEARCH
        try:
            for ef in sorted({40, 100, configured, 400}):
                search.EF_SEARCH = ef
                with connection.cursor() as cursor:
                    cursor.execute(f"SET hnsw.ef_search = {ef}")
                hits, timings = 0, []
                for vector, truth in zip(vectors, exact, strict=True):
                    started = time.perf_counter()
                    found = search.nearest(scope, vector, 10)
                    timings.append(time.perf_counter() - started)
                    # Equal distances may come back in either order: a hit is any result
                    # at least as close as the exact 10th.
                    bound = min(truth.values()) - 1e-6 if truth else 1.0
                    hits += sum(1 for score in found.values() if score >= bound)
                recall = hits / (10 * len(vectors))
                label = {40: "pgvector's default", configured: "Orrery's setting"}.get(ef, "")
                self.say(
                    f"  ef_search {ef:>3} ({label}): recall@10 {recall:.3f}, "
                    f"p50 {_pct(timings, 0.5) * 1000:.2f} ms a query"
                )
        finally:
            search.EF_SEARCH = configured
            with connection.cursor() as cursor:
                cursor.execute(f"SET hnsw.ef_search = {configured}")

    def _plan(self, scope, vector) -> str:
        from apps.datasets import search
        from apps.datasets.vector_index import index_name

        predicate, distance = search.distance_sql(len(vector))
        where, params = scope.where()
        sql = (
            f"EXPLAIN SELECT s.id FROM {search._FROM} WHERE {predicate} AND {where}"  # noqa: S608
            f" ORDER BY {distance} LIMIT 10"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, search.vector_literal(vector)])
            plan = "\n".join(row[0] for row in cursor.fetchall())
        used = index_name(len(vector)) in plan
        return f"the planner {'uses' if used else 'does NOT use'} {index_name(len(vector))}"
