"""The chat benchmark runs end to end on a few chats: its real server, its fake upstream,
its clients, and a report with no errors."""

import importlib.util
import io
import re

from django.core.management import call_command

from apps.chat.management.commands import bench_chat
from apps.chat.models import App
from tests.fakes.openai import count_tokens


def test_the_question_makes_the_fake_answer_with_the_asked_number_of_tokens():
    assert count_tokens("You said: " + bench_chat.query_for(300)) == 300
    assert bench_chat.count_tokens("You said: " + bench_chat.query_for(12)) == 12


def test_percentiles_pick_the_rank():
    values = [float(v) for v in range(1, 101)]
    assert bench_chat.pct(values, 0.5) == 50.0 and bench_chat.pct(values, 0.99) == 99.0


def _phases() -> str:
    # The websocket phase needs the web app's consumer (helper chat-webapp's branch).
    has_webapp = importlib.util.find_spec("apps.chat.consumers") is not None
    return "upstream,sse,websocket" if has_webapp else "upstream,sse"


def test_a_small_run_reports_every_path_without_errors(benchmark_env):
    out = io.StringIO()
    phases = _phases()
    call_command(
        "bench_chat", n=4, tokens=20, token_ms=1, ramp=0, timeout=60, phases=phases, stdout=out
    )
    report = out.getvalue()
    for name in phases.split(","):
        row = re.search(rf"^{name}\s+(\d+)\s+(\d+)\s+([\d.]+)ms", report, re.M)
        assert row, report
        assert (row.group(1), row.group(2)) == ("4", "0"), report
        assert float(row.group(3)) > 0
    assert "added time to first token, sse p50" in report
    assert re.search(r"upstream\s.*\d+ MB", report)
    assert not App.objects.exists()  # the run's app is gone with its messages
