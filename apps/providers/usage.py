"""The usage ledger: one row per model call, priced from the catalog."""

from __future__ import annotations

import asyncio
import weakref
from decimal import Decimal

from django.conf import settings
from django.db import DatabaseError
from django.db.models import Sum
from django.utils import timezone

from apps.core.errors import DomainError
from apps.core.offload import offload
from apps.providers.models import UsageRecord
from apps.providers.resolution import CredentialChoice, ModelTarget
from apps.providers.runtime.types import Usage


class HostedQuotaExceeded(DomainError):
    code = "quota_exceeded"
    status = 429


def usage_row(
    *,
    target: ModelTarget,
    choice: CredentialChoice | None,
    usage: Usage,
    latency_ms: int,
    ttft_ms: int | None = None,
    status: str = "success",
    source: str = "api",
    app_id=None,
    user_id=None,
) -> UsageRecord:
    """The ledger row for one call, not yet saved."""
    pricing = target.spec.pricing if target.spec else None
    price = pricing.cost(usage.input_tokens, usage.output_tokens) if pricing else Decimal(0)
    return UsageRecord(
        workspace_id=target.workspace_id,
        provider=target.provider.provider,
        model=target.model,
        model_type=target.model_type,
        app_id=app_id,
        user_id=user_id,
        source=source,
        credential=choice.name if choice else "",
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        ttft_ms=ttft_ms,
        latency_ms=latency_ms,
        price=price,
        currency=pricing.currency if pricing else "USD",
        status=status,
    )


class _GroupWriter:
    """Saves the rows of one event loop's calls, many to an INSERT when they come together.

    A row waits only for the write in progress, if any: with one call at a time each row
    is its own INSERT, as before; with many streams ending at once, the rows that arrive
    during one write go out in the next, one round trip and one worker thread for all."""

    def __init__(self) -> None:
        self.waiting: list[tuple[UsageRecord, asyncio.Future]] = []
        self.draining: asyncio.Task | None = None

    async def save(self, row: UsageRecord) -> None:
        done = asyncio.get_running_loop().create_future()
        self.waiting.append((row, done))
        if self.draining is None or self.draining.done():
            self.draining = asyncio.create_task(self._drain())
        # Shielded: a caller cancelled while it waits does not take its row with it.
        await asyncio.shield(done)

    async def _drain(self) -> None:
        while self.waiting:
            batch, self.waiting = self.waiting, []
            try:
                failures = await offload(_insert)([row for row, _ in batch])
            except Exception as exc:  # the database is down: every caller hears of it
                failures = [exc] * len(batch)
            for (_, done), failure in zip(batch, failures, strict=True):
                if done.done():
                    continue
                if failure is None:
                    done.set_result(None)
                else:
                    done.set_exception(failure)


def _insert(rows: list[UsageRecord]) -> list[Exception | None]:
    """Insert the rows at once; if that fails, one by one, so that one bad row (its app
    deleted meanwhile, say) fails alone. Returns each row's failure, or None."""
    if len(rows) > 1:
        try:
            # One statement; bulk_create also wraps it in a transaction, which a single
            # row below does without (two round trips fewer on a quiet server).
            UsageRecord.objects.bulk_create(rows)
            return [None] * len(rows)
        except DatabaseError:
            pass
    failures: list[Exception | None] = []
    for row in rows:
        try:
            row.save(force_insert=True)
            failures.append(None)
        except DatabaseError as exc:
            failures.append(exc)
    return failures


_writers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


async def usage_save(row: UsageRecord) -> None:
    """Save a ledger row from async code; it is in the table when this returns."""
    loop = asyncio.get_running_loop()
    writer = _writers.get(loop)
    if writer is None:
        writer = _writers[loop] = _GroupWriter()
    await writer.save(row)


def check_hosted_quota(target: ModelTarget, choice: CredentialChoice) -> None:
    """Calls on the operator's keys count against ORRERY_HOSTED_QUOTA_TOKENS a month."""
    quota = settings.ORRERY_HOSTED_QUOTA_TOKENS
    if not (choice.hosted and quota):
        return
    month_start = timezone.now().replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    used = UsageRecord.objects.filter(
        workspace_id=target.workspace_id, credential="system", created_at__gte=month_start
    ).aggregate(tokens=Sum("input_tokens") + Sum("output_tokens"))["tokens"]
    if (used or 0) >= quota:
        raise HostedQuotaExceeded(
            "This workspace has used its hosted model quota for the month. Add your own "
            "credentials under Settings → Model providers to keep going."
        )
