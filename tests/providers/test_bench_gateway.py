"""The gateway benchmark runs end to end on a few streams, and its event-loop fake streams
exactly what the threaded fake the adapter tests use does."""

import io
import re
import subprocess
import sys

import httpx
from django.core.management import call_command

from apps.providers.management.commands.bench_gateway import FAKE_KEY, FAKE_SCRIPT, _body
from tests.fakes.openai import FakeOpenAI
from tests.live_server import ROOT


def _raw_stream(url: str) -> list[bytes]:
    """The body's pieces as the server framed them (one per HTTP chunk)."""
    with (
        httpx.Client() as client,
        client.stream(
            "POST",
            f"{url}/v1/chat/completions",
            json=_body("gpt-4o-mini", words=5),
            headers={"Authorization": f"Bearer {FAKE_KEY}"},
        ) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        return [
            re.sub(rb'"(id|created)":("[^"]*"|\d+)', b"", piece) for piece in response.iter_raw()
        ]


def test_the_event_loop_fake_streams_what_the_threaded_fake_does():
    process = subprocess.Popen(  # noqa: S603 - our own fake
        [sys.executable, "-c", FAKE_SCRIPT, "0"], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    try:
        looped = _raw_stream(process.stdout.readline().strip())
    finally:
        process.terminate()
        process.wait(timeout=10)
    with FakeOpenAI(api_key=FAKE_KEY) as threaded:
        assert looped == _raw_stream(threaded.url)
    assert looped[-1].endswith(b"data: [DONE]\n\n") and len(looped) > 5


def test_a_small_run_reports_every_measurement(benchmark_env):
    out = io.StringIO()
    call_command(
        "bench_gateway",
        single=5,
        rounds=1,
        seconds=0.5,
        concurrency=4,
        token_interval=1,
        processes=1,
        stdout=out,
    )
    report = out.getvalue()
    assert report.count("added time to first token p99:") == 3, report
    for label in ("1 stream", "4 streams, each client back to back", "4 streams started at once"):
        assert f"== {label}" in report, report
    cpu = [float(ms) for ms in re.findall(r"gateway CPU per stream: ([\d.]+) ms", report)]
    assert len(cpu) == 3 and all(ms > 0 for ms in cpu), report
