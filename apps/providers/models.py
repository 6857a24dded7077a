"""A workspace's model providers: credentials (encrypted), per-model settings and custom
models, load-balancing credential sets, default models, and the usage ledger."""

from django.conf import settings
from django.db import models

from apps.core.models import TenantModel

MODEL_TYPES = [
    ("llm", "LLM"),
    ("text-embedding", "Text embedding"),
    ("rerank", "Rerank"),
    ("speech2text", "Speech to text"),
    ("tts", "Text to speech"),
    ("moderation", "Moderation"),
]


class ProviderConfig(TenantModel):
    """The provider-level credentials of a workspace (one set per provider)."""

    provider = models.CharField(max_length=64)
    encrypted_credentials = models.TextField()
    enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "provider"], name="provider_config_unique")
        ]

    def __str__(self) -> str:
        return self.provider


class LoadBalancing(models.TextChoices):
    OFF = "off", "Off"
    ROUND_ROBIN = "round_robin", "Round robin"
    LEAST_BUSY = "least_busy", "Least busy"


class ModelConfig(TenantModel):
    """Per-model settings: a customizable model the workspace added (with its own
    credentials), or a predefined model switched off or load-balanced."""

    provider = models.CharField(max_length=64)
    model_type = models.CharField(max_length=32, choices=MODEL_TYPES)
    model = models.CharField(max_length=255)
    is_custom = models.BooleanField(default=False)
    encrypted_credentials = models.TextField(blank=True)  # empty: provider credentials
    enabled = models.BooleanField(default=True)
    load_balancing = models.CharField(
        max_length=16, choices=LoadBalancing.choices, default=LoadBalancing.OFF
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider", "model_type", "model"], name="model_config_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(load_balancing__in=LoadBalancing.values),
                name="model_config_lb_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class CredentialSet(TenantModel):
    """One more credential set for a model, taking turns with the others under load
    balancing. Empty credentials mean "the model's base credentials"."""

    model_config = models.ForeignKey(
        ModelConfig, on_delete=models.CASCADE, related_name="credential_sets"
    )
    name = models.CharField(max_length=100)
    encrypted_credentials = models.TextField(blank=True)
    enabled = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["model_config", "name"], name="credential_set_unique")
        ]

    def __str__(self) -> str:
        return self.name


class DefaultModel(TenantModel):
    model_type = models.CharField(max_length=32, choices=MODEL_TYPES)
    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=255)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "model_type"], name="default_model_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model_type}: {self.provider}/{self.model}"


class UsageRecord(TenantModel):
    """One model call: who, which model, tokens, timing, price, and how it ended."""

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=255)
    model_type = models.CharField(max_length=32, choices=MODEL_TYPES)
    app_id = models.UUIDField(null=True, blank=True)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    source = models.CharField(max_length=32)  # gateway, playground, app, validation …
    credential = models.CharField(max_length=100, blank=True)  # which set served it
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    ttft_ms = models.PositiveIntegerField(null=True, blank=True)
    latency_ms = models.PositiveIntegerField(default=0)
    price = models.DecimalField(max_digits=16, decimal_places=7, default=0)
    currency = models.CharField(max_length=8, default="USD")
    status = models.CharField(max_length=40, default="success")  # or the error code

    class Meta:
        indexes = [models.Index(fields=["workspace", "created_at"], name="usage_ws_time")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} {self.created_at:%Y-%m-%d %H:%M}"
