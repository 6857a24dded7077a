"""Usage: what the workspace's model calls cost, per day and per model or app, the latest
calls, and a CSV export with one row per call. Every figure comes from the workspace's
own usage ledger, read through `selectors.usage_records`."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

from asgiref.sync import sync_to_async
from django.db.models import Count, F, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.http import HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.views.decorators.http import require_GET

from apps.providers import selectors
from apps.tenants.decorators import workspace_view

PERIODS = (7, 30, 90)
DEFAULT_DAYS = 30
MAX_DAYS = 366
GROUPS = {"model": "Model", "app": "App"}
LATEST_CALLS = 50
# Exports up to this many rows are built at once; larger ones stream, a chunk at a time.
STREAM_ABOVE_ROWS = 2000
CSV_CHUNK_ROWS = 500
# Who may see what the workspace spends: owners, admins and editors (the builders).
USAGE_PERMISSION = "usage.view"

_SUCCESS = Q(status="success")
_FAILED = ~Q(status__in=("success", "cancelled"))


class BadQuery(ValueError):
    pass


def read_days(raw: str | None) -> int:
    """The period in days: blank is the default, whole numbers are clamped to 1…366."""
    if raw is None or not raw.strip():
        return DEFAULT_DAYS
    try:
        days = int(raw)
    except ValueError:
        raise BadQuery("The period must be a whole number of days, e.g. ?days=30.") from None
    return min(max(days, 1), MAX_DAYS)


def read_group(raw: str | None) -> str:
    if not raw:
        return "model"
    if raw not in GROUPS:
        raise BadQuery("Group usage by model or by app.")
    return raw


def format_cost(amount: Decimal, currency: str = "") -> str:
    """0 → "0", 12.3456 → "12.35", 0.0000066 → "0.0000066" (prices go to 7 places)."""
    if amount >= 1:
        text = f"{amount:,.2f}"
    else:
        text = format(amount.normalize(), "f") if amount else "0"
    return f"{text} {currency}".strip()


def _bad_request(request, message: str):
    return render(request, "error.html", {"status": 400, "message": message}, status=400)


# --- Totals -------------------------------------------------------------------------------

_GROUP_KEYS = {"model": ("provider", "model"), "app": ("app_id",)}


def _group_label(group: str, row: dict) -> str:
    if group == "model":
        return f"{row['provider']}/{row['model']}"
    return f"App {str(row['app_id'])[:8]}" if row["app_id"] else "Outside apps"


@dataclass
class Totals:
    label: str
    calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: int = 0
    costs: dict[str, Decimal] = field(default_factory=dict)
    _ok_calls: int = 0
    _ok_latency_ms: int = 0

    def add(self, row: dict) -> None:
        self.calls += row["calls"]
        self.input_tokens += row["input_tokens"] or 0
        self.output_tokens += row["output_tokens"] or 0
        self.errors += row["errors"]
        self._ok_calls += row["ok_calls"]
        self._ok_latency_ms += row["ok_latency_ms"] or 0
        if row["cost"]:
            currency = row["currency"]
            self.costs[currency] = self.costs.get(currency, Decimal(0)) + row["cost"]

    def merge(self, other: Totals) -> None:
        self.calls += other.calls
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.errors += other.errors
        self._ok_calls += other._ok_calls
        self._ok_latency_ms += other._ok_latency_ms
        for currency, amount in other.costs.items():
            self.costs[currency] = self.costs.get(currency, Decimal(0)) + amount

    @property
    def avg_latency_ms(self) -> int | None:
        """Over successful calls: failures answer fast and would flatter the average."""
        return round(self._ok_latency_ms / self._ok_calls) if self._ok_calls else None

    @property
    def cost_text(self) -> str:
        if not self.costs:
            return "0"
        return " + ".join(format_cost(amount, cur) for cur, amount in sorted(self.costs.items()))


def group_totals(records: QuerySet, group: str) -> list[Totals]:
    rows = (
        records.order_by()
        .values(*_GROUP_KEYS[group], "currency")
        .annotate(
            calls=Count("id"),
            input_tokens=Sum("input_tokens"),
            output_tokens=Sum("output_tokens"),
            cost=Sum("price"),
            errors=Count("id", filter=_FAILED),
            ok_calls=Count("id", filter=_SUCCESS),
            ok_latency_ms=Sum("latency_ms", filter=_SUCCESS),
        )
    )
    merged: dict[str, Totals] = {}
    for row in rows:
        label = _group_label(group, row)
        merged.setdefault(label, Totals(label)).add(row)
    return sorted(merged.values(), key=lambda t: (-t.calls, t.label))


# --- The chart: stacked bars per day, drawn on the server as SVG ----------------------------

PALETTE = (
    "#3b5bdb",
    "#f08c00",
    "#2f9e44",
    "#c2255c",
    "#1098ad",
    "#7048e8",
    "#e8590c",
    "#5c940d",
)
OTHER_COLOR = "#adb5bd"
WIDTH, HEIGHT = 720, 220
LEFT, RIGHT, TOP, BOTTOM = 64, 24, 10, 26


@dataclass(frozen=True)
class Bar:
    x: str
    y: str
    width: str
    height: str
    color: str
    title: str


@dataclass(frozen=True)
class Mark:
    """An axis label and where it goes."""

    x: str
    y: str
    label: str


@dataclass(frozen=True)
class Series:
    label: str
    color: str


@dataclass
class Chart:
    title: str
    bars: list[Bar]
    y_marks: list[Mark]
    x_marks: list[Mark]
    legend: list[Series]
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right_edge: int = WIDTH - RIGHT
    baseline: int = HEIGHT - BOTTOM


def _px(value: float) -> str:
    return f"{value:.1f}"


def _nice_step(raw: Decimal, *, whole: bool) -> Decimal:
    """The smallest 1, 2, 2.5 or 5 × 10^n at or above `raw`."""
    base = Decimal(1).scaleb(raw.adjusted())
    for factor in ("1", "2", "2.5", "5", "10"):
        step = Decimal(factor) * base
        if whole and step != step.to_integral_value():
            continue
        if step >= raw:
            return max(step, Decimal(1)) if whole else step
    return Decimal(10) * base


def _short(value: Decimal, *, whole: bool) -> str:
    if not whole:
        return format(value.normalize(), "f") if value else "0"
    for limit, suffix in ((10**9, "B"), (10**6, "M"), (10**3, "k")):
        if value >= limit:
            return f"{format((value / limit).normalize(), 'f')}{suffix}"
    return str(int(value))


def _day_label(day: date) -> str:
    return f"{day.day} {day:%b}"


def stacked_chart(
    *,
    title: str,
    days: list[date],
    values: dict[tuple[date, str], Decimal],
    series: list[str],
    whole: bool,
    describe: Callable[[Decimal], str],
) -> Chart | None:
    """Bars per day, one stacked segment per series (the order of `series`, bottom up).
    None when there is nothing to draw."""
    totals = [sum((values.get((day, s), Decimal(0)) for s in series), Decimal(0)) for day in days]
    highest = max(totals, default=Decimal(0))
    if highest <= 0:
        return None
    step = _nice_step(highest / 4, whole=whole)
    top = step * math.ceil(highest / step)  # the first step at or above the tallest bar
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(days)
    bar_w = max(slot * 0.7, 1.0)
    colors = {s: PALETTE[i] if i < len(PALETTE) else OTHER_COLOR for i, s in enumerate(series)}

    def y_of(amount: Decimal) -> float:
        return TOP + plot_h - float(amount / top) * plot_h

    bars = []
    for index, day in enumerate(days):
        x = LEFT + index * slot + (slot - bar_w) / 2
        stacked = Decimal(0)
        for name in series:
            amount = values.get((day, name), Decimal(0))
            if amount <= 0:
                continue
            y_low, y_high = y_of(stacked), y_of(stacked + amount)
            stacked += amount
            bars.append(
                Bar(
                    x=_px(x),
                    y=_px(y_high),
                    width=_px(bar_w),
                    height=_px(max(y_low - y_high, 0.5)),
                    color=colors[name],
                    title=f"{_day_label(day)} · {name}: {describe(amount)}",
                )
            )
    ticks = int(top / step)
    y_marks = [
        Mark(x=_px(LEFT - 6), y=_px(y_of(step * i)), label=_short(step * i, whole=whole))
        for i in range(ticks + 1)
    ]
    every = -(-len(days) // 8)  # at most eight dates under the axis
    x_marks = [
        Mark(x=_px(LEFT + i * slot + slot / 2), y=_px(HEIGHT - 8), label=_day_label(day))
        for i, day in enumerate(days)
        if (len(days) - 1 - i) % every == 0  # always label the last day (today)
    ]
    legend = [Series(name, colors[name]) for name in series]
    return Chart(title=title, bars=bars, y_marks=y_marks, x_marks=x_marks, legend=legend)


def usage_charts(records: QuerySet, group: str, days: int, order: list[str]) -> list[Chart]:
    """Tokens per day, then cost per day in each currency the period was billed in."""
    today = timezone.localdate()
    first = timezone.localdate(timezone.now() - timedelta(days=days))
    span = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    rows = (
        records.order_by()
        .annotate(day=TruncDate("created_at"))
        .values("day", *_GROUP_KEYS[group], "currency")
        .annotate(tokens=Sum(F("input_tokens") + F("output_tokens")), cost=Sum("price"))
    )
    # Beyond the palette, the smallest groups share one grey "Other" segment.
    shown = order if len(order) <= len(PALETTE) else [*order[: len(PALETTE) - 1], "Other"]
    kept = set(shown)
    tokens: dict[tuple[date, str], Decimal] = {}
    costs: dict[str, dict[tuple[date, str], Decimal]] = {}
    for row in rows:
        label = _group_label(group, row)
        label = label if label in kept else "Other"
        key = (row["day"], label)
        tokens[key] = tokens.get(key, Decimal(0)) + Decimal(row["tokens"] or 0)
        if row["cost"]:
            per_currency = costs.setdefault(row["currency"], {})
            per_currency[key] = per_currency.get(key, Decimal(0)) + row["cost"]
    charts = [
        stacked_chart(
            title="Tokens per day",
            days=span,
            values=tokens,
            series=shown,
            whole=True,
            describe=lambda amount: f"{int(amount):,} tokens",
        )
    ]
    for currency, values in sorted(costs.items()):
        charts.append(
            stacked_chart(
                title=f"Cost per day ({currency})",
                days=span,
                values=values,
                series=shown,
                whole=False,
                describe=lambda amount, currency=currency: format_cost(amount, currency),
            )
        )
    return [chart for chart in charts if chart is not None]


# --- Pages ----------------------------------------------------------------------------------


@require_GET
@workspace_view(USAGE_PERMISSION)
def usage_view(request):
    try:
        days = read_days(request.GET.get("days"))
        group = read_group(request.GET.get("group"))
    except BadQuery as exc:
        return _bad_request(request, str(exc))
    records = selectors.usage_records(workspace=request.workspace, days=days)
    totals = group_totals(records, group)
    overall = Totals("All")
    for row in totals:
        overall.merge(row)
    latest = list(records[:LATEST_CALLS]) if totals else []
    for call in latest:
        call.cost_text = format_cost(call.price, call.currency)
    context = {
        "days": days,
        "group": group,
        "group_label": GROUPS[group],
        "periods": PERIODS,
        "groups": GROUPS,
        "totals": totals,
        "overall": overall,
        "charts": usage_charts(records, group, days, [t.label for t in totals]) if totals else [],
        "latest": latest,
    }
    return render(request, "providers/usage.html", context)


CSV_HEADER = (
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
)
_CSV_FIELDS = (
    "created_at",
    "provider",
    "model",
    "model_type",
    "source",
    "user__email",
    "credential",
    "input_tokens",
    "output_tokens",
    "ttft_ms",
    "latency_ms",
    "price",
    "currency",
    "status",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value) -> str | int:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value  # a spreadsheet would run it as a formula
    return value


def _csv_text(rows: Iterable[tuple], *, header: bool) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    if header:
        writer.writerow(CSV_HEADER)
    writer.writerows([_cell(value) for value in row] for row in rows)
    return out.getvalue()


def _csv_page(records: QuerySet, after: tuple | None) -> list[tuple]:
    """The next CSV_CHUNK_ROWS calls after `after` (created_at, id), oldest first."""
    if after is not None:
        created_at, pk = after
        records = records.filter(Q(created_at__gt=created_at) | Q(created_at=created_at, pk__gt=pk))
    return list(
        records.order_by("created_at", "id").values_list(*_CSV_FIELDS, "id")[:CSV_CHUNK_ROWS]
    )


async def _csv_stream(records: QuerySet) -> AsyncIterator[str]:
    """Page by page (keyset, so no cursor stays open between chunks)."""
    yield _csv_text([], header=True)
    after = None
    while page := await sync_to_async(_csv_page)(records, after):
        after = (page[-1][0], page[-1][-1])
        yield _csv_text([row[:-1] for row in page], header=False)


@require_GET
@workspace_view(USAGE_PERMISSION)
def usage_csv_view(request):
    try:
        days = read_days(request.GET.get("days"))
    except BadQuery as exc:
        return _bad_request(request, str(exc))
    records = selectors.usage_records(workspace=request.workspace, days=days)
    filename = f"orrery-usage-{days}d-{timezone.localdate():%Y-%m-%d}.csv"
    if records.count() > STREAM_ABOVE_ROWS:
        # Served by daphne, an async iterator goes out chunk by chunk as it is read.
        response = StreamingHttpResponse(_csv_stream(records), content_type="text/csv")
    else:
        rows = records.order_by("created_at", "id").values_list(*_CSV_FIELDS)
        response = HttpResponse(_csv_text(rows, header=True), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("usage/", usage_view, name="usage"),
    path("usage.csv", usage_csv_view, name="usage_csv"),
]
