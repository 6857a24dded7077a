"""The usage page and its CSV export: totals, the chart, the latest calls, and nothing of
another workspace."""

import csv
import io
import re
import urllib.request
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from apps.providers.models import UsageRecord
from apps.providers.views import usage
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db

APP = "6f1c2a9e-0000-4000-8000-000000000001"


def record(team, *, days_ago: float = 0, user=None, **fields) -> UsageRecord:
    values = {
        "provider": "openai",
        "model": "gpt-4o-mini",
        "model_type": "llm",
        "source": "playground",
        "input_tokens": 100,
        "output_tokens": 50,
        "latency_ms": 400,
        "ttft_ms": 120,
        "price": Decimal("0.0000450"),
        "currency": "USD",
        "status": "success",
        **fields,
    }
    created = UsageRecord.objects.create(
        workspace=team.workspace, user=user or team.owner, **values
    )
    if days_ago:
        UsageRecord.objects.filter(pk=created.pk).update(
            created_at=timezone.now() - timedelta(days=days_ago)
        )
        created.refresh_from_db()
    return created


@pytest.fixture
def ledger(team):
    editor = team.members[Role.EDITOR].user
    record(team)
    record(team, days_ago=2, user=editor, latency_ms=600, credential="backup key")
    record(
        team,
        days_ago=2,
        status="provider_rate_limited",
        input_tokens=0,
        output_tokens=0,
        price=Decimal(0),
        latency_ms=30,
    )
    record(
        team,
        provider="anthropic",
        model="claude-3-5-haiku-20241022",
        input_tokens=1000,
        output_tokens=2000,
        price=Decimal("0.0088000"),
        app_id=APP,
        source="app",
        latency_ms=900,
    )
    record(team, provider="tongyi", model="qwen-plus", price=Decimal("0.5"), currency="CNY")
    record(team, days_ago=45, input_tokens=7777)  # outside the 30-day default
    return team


def totals_by_label(response) -> dict:
    return {row.label: row for row in response.context["totals"]}


def test_the_table_totals_each_model(ledger):
    response = ledger.client().get("/usage/")
    assert response.status_code == 200
    rows = totals_by_label(response)
    mini = rows["openai/gpt-4o-mini"]
    assert (mini.calls, mini.input_tokens, mini.output_tokens, mini.errors) == (3, 200, 100, 1)
    assert mini.costs == {"USD": Decimal("0.0000900")}
    assert mini.avg_latency_ms == 500  # successful calls only: (400 + 600) / 2
    assert rows["anthropic/claude-3-5-haiku-20241022"].cost_text == "0.0088 USD"
    assert rows["tongyi/qwen-plus"].cost_text == "0.5 CNY"
    overall = response.context["overall"]
    assert overall.calls == 5 and overall.cost_text == "0.5 CNY + 0.00889 USD"
    page = response.content.decode()
    table = page[page.index('data-testid="usage-totals"') :]
    assert re.search(r"openai/gpt-4o-mini</code></td>\s*<td[^>]*>3</td>\s*<td[^>]*>200</td>", table)
    assert "7777" not in page


def test_the_chart_stacks_tokens_and_cost_per_day_per_model(ledger):
    response = ledger.client().get("/usage/?days=7")
    charts = response.context["charts"]
    assert [chart.title for chart in charts] == [
        "Tokens per day",
        "Cost per day (CNY)",
        "Cost per day (USD)",
    ]
    tokens = charts[0]
    assert [s.label for s in tokens.legend][:1] == ["openai/gpt-4o-mini"]
    # Today: three models, so three segments; two days ago only the successful mini call
    # has tokens (the failed one counted none).
    today = timezone.localdate()
    titled = [bar.title for bar in tokens.bars]
    assert f"{today.day} {today:%b} · openai/gpt-4o-mini: 150 tokens" in titled
    assert f"{today.day} {today:%b} · anthropic/claude-3-5-haiku-20241022: 3,000 tokens" in titled
    assert len(tokens.bars) == 4
    assert [mark.label for mark in tokens.y_marks][0] == "0"
    assert tokens.x_marks[-1].label == f"{today.day} {today:%b}"
    page = response.content.decode()
    assert page.count("<svg viewBox=") == 3 and "<script" not in page.split("<main")[1]
    usd = charts[2]
    assert {bar.title.split(": ")[1] for bar in usd.bars} >= {"0.0088 USD", "0.000045 USD"}


def test_grouping_by_app(ledger):
    response = ledger.client().get("/usage/?group=app")
    rows = totals_by_label(response)
    assert set(rows) == {"App 6f1c2a9e", "Outside apps"}
    assert rows["App 6f1c2a9e"].calls == 1 and rows["Outside apps"].calls == 4


def test_the_period_selector(ledger):
    client = ledger.client()
    assert response_calls(client.get("/usage/?days=90")) == 6
    assert response_calls(client.get("/usage/?days=30")) == 5
    assert response_calls(client.get("/usage/?days=1")) == 3
    page = client.get("/usage/?days=90").content.decode()
    assert '<a href="?days=90&amp;group=model" aria-current="true">90 days</a>' in page


def response_calls(response) -> int:
    return response.context["overall"].calls


def test_the_latest_calls_are_listed_newest_first(ledger):
    response = ledger.client().get("/usage/")
    latest = response.context["latest"]
    assert len(latest) == 5
    assert latest[0].created_at >= latest[-1].created_at
    page = response.content.decode()
    assert "blue-editor@example.com" in page and "provider_rate_limited" in page


@pytest.mark.parametrize(
    ("days", "status", "shown"),
    [
        ("abc", 400, None),
        ("1e3", 400, None),
        ("", 200, 30),
        ("0", 200, 1),
        ("-5", 200, 1),
        ("100000", 200, 366),
        ("9" * 5000, 400, None),
    ],
    ids=["word", "exponent", "blank", "zero", "negative", "huge", "absurd"],
)
def test_bad_periods_are_refused_or_clamped(team, days, status, shown):
    response = team.client().get("/usage/", {"days": days})
    assert response.status_code == status
    if shown:
        assert response.context["days"] == shown
    assert team.client().get("/usage.csv", {"days": days}).status_code == status


def test_an_unknown_grouping_is_refused(team):
    assert team.client().get("/usage/?group=planet").status_code == 400


def test_the_csv_has_one_row_per_call(ledger):
    response = ledger.client().get("/usage.csv?days=30")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv"
    assert response["Content-Disposition"].startswith('attachment; filename="orrery-usage-30d-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    assert rows[0] == [
        "time",
        "provider",
        "model",
        "type",
        "source",
        "user_email",
        "credential_set",
        "input_tokens",
        "output_tokens",
        "ttft_ms",
        "latency_ms",
        "price",
        "currency",
        "status",
    ]
    body = rows[1:]
    assert len(body) == 5
    assert [row[0] for row in body] == sorted(row[0] for row in body)  # oldest first
    backup = next(row for row in body if row[6] == "backup key")
    assert backup[1:6] == ["openai", "gpt-4o-mini", "llm", "playground", "blue-editor@example.com"]
    assert backup[7:] == ["100", "50", "120", "600", "0.0000450", "USD", "success"]
    assert sum(int(row[7]) for row in body) == 1300


def test_a_large_export_streams(ledger, monkeypatch):
    monkeypatch.setattr(usage, "STREAM_ABOVE_ROWS", 2)
    monkeypatch.setattr(usage, "CSV_CHUNK_ROWS", 2)
    response = ledger.client().get("/usage.csv?days=90")
    assert response.streaming
    with pytest.warns(Warning, match="StreamingHttpResponse must consume asynchronous"):
        # The test client is synchronous; daphne consumes the async iterator as it comes.
        chunks = list(response)
    assert len(chunks) == 1 + 3  # the header, then six rows two by two
    rows = list(csv.reader(io.StringIO(b"".join(chunks).decode())))
    assert len(rows) == 7 and rows[-1][1] == "tongyi"


def test_spreadsheet_formulas_in_a_csv_are_defused(team):
    record(team, model='=HYPERLINK("http://evil.example")')
    rows = list(csv.reader(io.StringIO(team.client().get("/usage.csv").content.decode())))
    assert rows[1][2] == '\'=HYPERLINK("http://evil.example")'


def test_another_workspaces_usage_never_shows(ledger, other_team):
    record(other_team, model="gpt-4o", user=other_team.owner, credential="crimson secret set")
    page = ledger.client().get("/usage/").content.decode()
    export = ledger.client().get("/usage.csv?days=90").content.decode()
    for text in (page, export):
        assert "gpt-4o," not in text and "openai/gpt-4o<" not in text
        assert "crimson" not in text
    theirs = other_team.client().get("/usage.csv?days=90").content.decode()
    assert theirs.count("\n") == 2 and "blue-" not in theirs


def test_an_empty_period_says_so(team):
    page = team.client().get("/usage/").content.decode()
    assert 'data-testid="usage-empty"' in page and "No model calls in the last 30 days" in page
    assert "<svg viewBox=" not in page
    rows = list(csv.reader(io.StringIO(team.client().get("/usage.csv").content.decode())))
    assert len(rows) == 1


@pytest.mark.parametrize(
    ("role", "status"),
    [
        (Role.OWNER, 200),
        (Role.ADMIN, 200),
        (Role.EDITOR, 200),
        (Role.NORMAL, 403),
        (Role.DATASET_OPERATOR, 403),
    ],
    ids=["owner", "admin", "editor", "member", "knowledge-operator"],
)
def test_who_may_see_usage(team, role, status):
    client = team.client(role)
    assert client.get("/usage/").status_code == status
    assert client.get("/usage.csv").status_code == status
    settings_page = client.get("/settings/").content.decode()
    assert ('href="/usage/"' in settings_page) == (status == 200)


def test_signed_out_visitors_are_sent_to_sign_in(client):
    response = client.get("/usage.csv")
    assert response.status_code == 302 and response["Location"].startswith("/login/")


@pytest.mark.django_db(transaction=True)
def test_a_large_export_streams_through_the_real_server(team, live_server_url):
    from tests.providers.test_playground import session_cookie

    UsageRecord.objects.bulk_create(
        UsageRecord(
            workspace=team.workspace,
            provider="openai",
            model="gpt-4o-mini",
            model_type="llm",
            source="gateway",
            input_tokens=i,
        )
        for i in range(usage.STREAM_ABOVE_ROWS + 1)
    )
    request = urllib.request.Request(
        f"{live_server_url}/usage.csv?days=7", headers={"Cookie": session_cookie(team.owner)}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.headers["Content-Type"] == "text/csv"
        assert response.headers["Content-Length"] is None  # chunked: it streamed
        rows = list(csv.reader(io.StringIO(response.read().decode())))
    assert len(rows) == usage.STREAM_ABOVE_ROWS + 2
    assert sorted(int(row[7]) for row in rows[1:]) == list(range(usage.STREAM_ABOVE_ROWS + 1))
