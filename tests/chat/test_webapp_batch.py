"""Batch runs of a text generator from a CSV: a bad file is refused with a message that says
what to fix; a good one runs row by row in the background with progress, and its results
come back as a CSV that a spreadsheet cannot mistake for formulas."""

import csv
import io

import dramatiq
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.chat import batch
from apps.chat.batch import BadBatchFile, parse_rows
from apps.chat.models import BatchRun
from apps.chat.visitors import VISITOR_HEADER
from tests.chat.conftest import make_app
from tests.chat.test_webapp_pages import visit

pytestmark = pytest.mark.django_db

FORM = [
    {"text-input": {"label": "Topic", "variable": "topic", "required": True}},
    {"select": {"label": "Tone", "variable": "tone", "options": ["calm", "bold"]}},
]


@pytest.fixture
def writer(team):
    return make_app(team, mode="completion", user_input_form=FORM)


def test_rows_are_read_by_variable_or_label(writer):
    rows = parse_rows(app=writer, data=b"Topic,tone,extra\nmoons,calm,x\nrings,,y\n")
    assert rows == [{"topic": "moons", "tone": "calm"}, {"topic": "rings", "tone": ""}]


def test_a_byte_order_mark_and_blank_lines_are_fine(writer):
    data = "\ufefftopic\n\nmoons\n\n".encode()
    assert parse_rows(app=writer, data=data) == [{"topic": "moons"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "The file is empty."),
        (b"\n\n", "The file is empty."),
        (b"topic\n", "The file has a header but no rows."),
        (b"name,age\nx,1\n", "The first row must name the input variables: topic, tone."),
        (b"tone\ncalm\n", "The file has no column for topic."),
        (b"topic\n\xff\xfe\x00bad\n", "The file is not UTF-8 text"),
        (b"topic,tone\nmoons,calm,extra,cells\n", "Row 2 has more cells than the header."),
        (b"topic,tone\n,calm\n", "Row 2: Topic is required."),
        (("topic\n" + "x\n" * 101).encode(), "a batch can have at most 100"),
        (b"topic\n" + b"x" * 1_000_001, "The file is too large"),
    ],
    ids=[
        "empty",
        "blank",
        "header-only",
        "wrong-header",
        "missing-required-column",
        "not-utf8",
        "ragged-row",
        "missing-required-value",
        "too-many-rows",
        "too-large",
    ],
)
def test_a_bad_file_gets_a_clear_message(writer, data, message):
    with pytest.raises(BadBatchFile, match=message.replace(".", r"\.")):
        parse_rows(app=writer, data=data)


def test_an_app_without_inputs_has_nothing_to_fill(team):
    app = make_app(team, mode="completion", user_input_form=[])
    with pytest.raises(BadBatchFile, match="no input variables"):
        parse_rows(app=app, data=b"topic\nx\n")


def test_the_page_shows_the_message_for_a_bad_file_and_starts_nothing(writer):
    client, _, token = visit(f"/completion/{writer.site_code}")
    upload = SimpleUploadedFile("rows.csv", b"name\nx\n", content_type="text/csv")
    response = client.post(
        f"/completion/{writer.site_code}/batch",
        {"file": upload},
        headers={VISITOR_HEADER: token, "HX-Request": "true"},
    )
    assert response.status_code == 200
    assert "The first row must name the input variables: topic, tone." in response.content.decode()
    assert not BatchRun.objects.exists()
    missing = client.post(f"/completion/{writer.site_code}/batch", headers={VISITOR_HEADER: token})
    assert "Choose a CSV file to run." in missing.content.decode()


def test_results_download_as_csv_without_formulas(writer):
    client, _, token = visit(f"/completion/{writer.site_code}")
    run = BatchRun.objects.create(
        workspace=writer.workspace,
        app=writer,
        end_user=writer.end_users.get(),
        rows=[{"topic": "moons", "tone": ""}, {"topic": "=HYPERLINK(1)", "tone": "bold"}],
        results=[{"answer": "Moons orbit.", "error": ""}, {"answer": "@SUM(A1)", "error": ""}],
        status=BatchRun.Status.DONE,
    )
    response = client.get(
        f"/completion/{writer.site_code}/batch/{run.pk}/results.csv", {"visitor": token}
    )
    assert response["Content-Type"].startswith("text/csv")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table == [
        ["topic", "tone", "answer", "error"],
        ["moons", "", "Moons orbit.", ""],
        ["'=HYPERLINK(1)", "bold", "'@SUM(A1)", ""],
    ]


def test_progress_polls_until_done(writer):
    client, _, token = visit(f"/completion/{writer.site_code}")
    run = BatchRun.objects.create(
        workspace=writer.workspace,
        app=writer,
        end_user=writer.end_users.get(),
        file_name="rows.csv",
        rows=[{"topic": "a"}, {"topic": "b"}],
        results=[{"answer": "A", "error": ""}],
        status=BatchRun.Status.RUNNING,
    )
    url = f"/completion/{writer.site_code}/batch/{run.pk}"
    page = client.get(url, headers={"HX-Request": "true"}).content.decode()
    assert "1 of 2 rows" in page and 'hx-trigger="every 1s"' in page
    BatchRun.objects.filter(pk=run.pk).update(
        status=BatchRun.Status.DONE, results=[{"answer": "A", "error": ""}] * 2
    )
    response = client.get(url, headers={"HX-Request": "true"})
    assert response.status_code == 286  # htmx stops polling
    body = response.content.decode()
    assert "2 of 2 rows" in body and "Download results (CSV)" in body
    assert 'hx-trigger="every 1s"' not in body
    assert batch.MAX_ROWS == 100


@pytest.fixture
def workers():
    """Real Dramatiq worker threads on the configured broker."""
    from tests.datasets.conftest import Workers

    dramatiq.get_broker().flush_all()
    running = Workers()
    yield running
    running.stop()


@pytest.mark.django_db(transaction=True)
def test_a_batch_runs_every_row_in_the_background(openai_ready, workers):
    form = [{"text-input": {"label": "Topic", "variable": "topic", "required": True}}]
    app = make_app(openai_ready, "completion", user_input_form=form, pre_prompt="{{topic}}")
    client, _, token = visit(f"/completion/{app.site_code}")
    upload = SimpleUploadedFile("topics.csv", b"topic\nmoons\nrings\ncomets\n")
    response = client.post(
        f"/completion/{app.site_code}/batch",
        {"file": upload},
        headers={VISITOR_HEADER: token, "HX-Request": "true"},
    )
    assert "of 3 rows" in response.content.decode()
    workers.drain()
    run = BatchRun.objects.get()
    assert run.status == BatchRun.Status.DONE and run.done_count == 3
    response = client.get(f"/completion/{app.site_code}/batch/{run.pk}/results.csv")
    table = list(csv.reader(io.StringIO(response.content.decode())))
    assert table[1:] == [
        ["moons", "You said: moons", ""],
        ["rings", "You said: rings", ""],
        ["comets", "You said: comets", ""],
    ]
