"""Batch runs of a text generator: a CSV whose header names the app's input variables, one
row per run. The rows run in the background (a Dramatiq actor, one row at a time, at most
MAX_ROWS), the page polls the progress, and the results come back as a CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import logging
from typing import TextIO

import dramatiq
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from apps.chat import generation
from apps.chat.generation.inputs import form_fields
from apps.chat.models import App, BatchRun, EndUser, FromSource
from apps.chat.visitors import Visitor
from apps.core.errors import DomainError, NotFound

logger = logging.getLogger(__name__)

MAX_ROWS = 100
MAX_BYTES = 1_000_000
ROW_TIME_LIMIT_MS = 5 * 60 * 1000


class BadBatchFile(DomainError):
    code = "invalid_batch_file"


def _variables(app: App) -> list[tuple[str, str, bool]]:
    """(variable, label, required) for each input variable of the app."""
    return [
        (
            str(spec["variable"]),
            str(spec.get("label") or spec["variable"]),
            bool(spec.get("required")),
        )
        for _kind, spec in form_fields(app.config)
    ]


def parse_rows(*, app: App, data: bytes) -> list[dict]:
    """The CSV's rows as inputs, or a BadBatchFile saying what is wrong with it."""
    if not data.strip():
        raise BadBatchFile("The file is empty.")
    if len(data) > MAX_BYTES:
        raise BadBatchFile(f"The file is too large (at most {MAX_BYTES // 1000} KB).")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadBatchFile("The file is not UTF-8 text: save it as CSV (UTF-8).") from None
    try:
        table = list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise BadBatchFile(f"The file is not a readable CSV: {exc}.") from None
    table = [row for row in table if any(cell.strip() for cell in row)]
    if not table:
        raise BadBatchFile("The file is empty.")
    variables = _variables(app)
    if not variables:
        raise BadBatchFile("This app has no input variables to fill from a file.")
    header = [cell.strip() for cell in table[0]]
    columns: dict[str, int] = {}
    for variable, label, _required in variables:
        for index, name in enumerate(header):
            if name in (variable, label):
                columns[variable] = index
                break
    if not columns:
        expected = ", ".join(v for v, _, _ in variables)
        raise BadBatchFile(f"The first row must name the input variables: {expected}.")
    missing = [v for v, _, required in variables if required and v not in columns]
    if missing:
        raise BadBatchFile(f"The file has no column for {', '.join(missing)}.")
    rows = []
    for line, cells in enumerate(table[1:], start=2):
        if len(cells) > len(header):
            raise BadBatchFile(f"Row {line} has more cells than the header.")
        inputs = {v: (cells[i] if i < len(cells) else "") for v, i in columns.items()}
        for variable, label, required in variables:
            if required and not inputs.get(variable, "").strip():
                raise BadBatchFile(f"Row {line}: {label} is required.")
        rows.append(inputs)
    if not rows:
        raise BadBatchFile("The file has a header but no rows.")
    if len(rows) > MAX_ROWS:
        raise BadBatchFile(f"The file has {len(rows)} rows; a batch can have at most {MAX_ROWS}.")
    return rows


def batch_start(*, visitor: Visitor, upload) -> BatchRun:
    if upload is None:
        raise BadBatchFile("Choose a CSV file to run.")
    rows = parse_rows(app=visitor.app, data=upload.read(MAX_BYTES + 1))
    with transaction.atomic():
        run = BatchRun.objects.create(
            workspace=visitor.workspace,
            app=visitor.app,
            end_user=visitor.end_user,
            file_name=(upload.name or "")[:255],
            rows=rows,
        )
        transaction.on_commit(lambda: batch_run_execute.send(str(run.pk)))
    return run


def batch_list(*, visitor: Visitor) -> QuerySet[BatchRun]:
    return (
        BatchRun.objects.for_workspace(visitor.workspace)
        .filter(app=visitor.app, end_user=visitor.end_user)
        .order_by("-created_at")
    )


def batch_get(*, visitor: Visitor, batch_id) -> BatchRun:
    try:
        run = batch_list(visitor=visitor).filter(pk=batch_id).first()
    except (ValueError, TypeError):
        run = None
    if run is None:
        raise NotFound("No such batch run.")
    return run


def results_csv(*, run: BatchRun, out: TextIO) -> None:
    """The input columns, then the answer and any error, one line per row."""
    present = set(run.rows[0]) if run.rows else set()
    # In the form's order: the database does not keep the order of a row's keys.
    variables = [v for v, _, _ in _variables(run.app) if v in present]
    variables += sorted(present - set(variables))
    writer = csv.writer(out)
    writer.writerow([*variables, "answer", "error"])
    for index, row in enumerate(run.rows):
        result = run.results[index] if index < len(run.results) else {"answer": "", "error": ""}
        cells = [_csv_safe(str(row.get(v, ""))) for v in variables]
        writer.writerow([*cells, _csv_safe(result["answer"]), _csv_safe(result["error"])])


def _csv_safe(value: str) -> str:
    """A cell a spreadsheet will not run as a formula (model output is untrusted)."""
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


# --- The background run ----------------------------------------------------------------------


async def _generate(app: App, end_user: EndUser, inputs: dict) -> tuple[str, str]:
    run = await generation.start(
        app=app, from_source=FromSource.WEB_APP, end_user=end_user, inputs=inputs
    )
    answer, error = "", ""
    async for event in generation.events(run):
        if isinstance(event, generation.MessageEnd):
            answer = event.answer
        elif isinstance(event, generation.GenerationFailed):
            error = event.message
    if run.task is not None:
        await run.task  # the turn is saved before this row counts as done
    return answer, error


def _run_row(app: App, end_user: EndUser, inputs: dict) -> tuple[str, str]:
    """(answer, error) of one row: a whole turn through the app's pipeline, run to its end
    on an event loop of this worker thread."""
    return asyncio.run(_generate(app, end_user, inputs))


@dramatiq.actor(max_retries=0, time_limit=MAX_ROWS * ROW_TIME_LIMIT_MS, queue_name="default")
def batch_run_execute(batch_id: str) -> None:
    claimed = BatchRun.objects.filter(pk=batch_id, status=BatchRun.Status.QUEUED).update(
        status=BatchRun.Status.RUNNING
    )
    if not claimed:
        return  # someone else has it, or it is gone
    run = BatchRun.objects.select_related("app", "end_user").get(pk=batch_id)
    results = list(run.results)
    try:
        for inputs in run.rows[len(results) :]:
            try:
                answer, error = _run_row(run.app, run.end_user, inputs)
            except DomainError as exc:
                answer, error = "", exc.message
            results.append({"answer": answer, "error": error})
            BatchRun.objects.filter(pk=run.pk).update(results=results)
    except Exception:
        logger.exception("Batch run %s failed", batch_id)
        BatchRun.objects.filter(pk=run.pk).update(
            status=BatchRun.Status.FAILED,
            error="The batch stopped on an unexpected error.",
            finished_at=timezone.now(),
        )
        raise
    BatchRun.objects.filter(pk=run.pk).update(
        status=BatchRun.Status.DONE, finished_at=timezone.now()
    )
