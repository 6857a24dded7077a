"""The usage ledger: one row per model call, priced from the catalog."""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db.models import Sum
from django.utils import timezone

from apps.core.errors import DomainError
from apps.providers.models import UsageRecord
from apps.providers.resolution import CredentialChoice, ModelTarget
from apps.providers.runtime.types import Usage


class HostedQuotaExceeded(DomainError):
    code = "quota_exceeded"
    status = 429


def usage_record(
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
    pricing = target.spec.pricing if target.spec else None
    price = pricing.cost(usage.input_tokens, usage.output_tokens) if pricing else Decimal(0)
    return UsageRecord.objects.create(
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
