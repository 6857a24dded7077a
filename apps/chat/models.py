"""Apps and what people do with them: conversations, messages, feedback, annotations,
end users of the public pages and the Service API, uploaded files, app API keys.

An app's whole configuration is one JSON document in the shape of Dify's
app_model_config (model, pre_prompt, user_input_form, opening_statement, features …), so
the DSL imports and exports it without translation; `apps.chat.config` reads it."""

from __future__ import annotations

import uuid

from django.db import models
from pgvector.django import VectorField

from apps.core.models import TenantModel


class AppMode(models.TextChoices):
    CHAT = "chat", "Chat assistant"
    COMPLETION = "completion", "Text generator"
    AGENT_CHAT = "agent-chat", "Agent"
    ADVANCED_CHAT = "advanced-chat", "Chatflow"
    WORKFLOW = "workflow", "Workflow"


class App(TenantModel):
    name = models.CharField(max_length=100)
    mode = models.CharField(max_length=16, choices=AppMode.choices)
    description = models.TextField(blank=True, max_length=2000)
    icon = models.CharField(max_length=16, default="🤖")  # an emoji
    icon_background = models.CharField(max_length=16, default="#E4FBCC")
    config = models.JSONField(default=dict)  # Dify's app_model_config shape
    created_by = models.ForeignKey(
        "tenants.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)
    # The public web app at /chat/<site_code> or /completion/<site_code>.
    site_code = models.CharField(max_length=32, unique=True)
    enable_site = models.BooleanField(default=True)
    site_requires_login = models.BooleanField(default=False)
    enable_api = models.BooleanField(default=True)
    # 0 means no limit.
    rate_limit_per_minute = models.PositiveIntegerField(default=0)
    end_user_rate_limit_per_minute = models.PositiveIntegerField(default=0)
    max_active_requests = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-updated_at"]
        indexes = [models.Index(fields=["workspace", "-updated_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(mode__in=AppMode.values), name="app_mode_valid"
            )
        ]

    def __str__(self) -> str:
        return self.name


class AppApiKey(TenantModel):
    """A Service API key of one app (`Authorization: Bearer app-…`); only its SHA-256 is
    stored, the key is shown once."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    prefix = models.CharField(max_length=16)
    key_hash = models.CharField(max_length=64, unique=True)
    created_by = models.ForeignKey(
        "tenants.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.prefix}…"


class EndUser(TenantModel):
    """Someone using an app from outside the workspace: the Service API's `user` string,
    or a browser session on the public page. Conversations belong to one end user."""

    class Source(models.TextChoices):
        SERVICE_API = "service_api", "Service API"
        BROWSER = "browser", "Web app"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="end_users")
    source = models.CharField(max_length=16, choices=Source.choices)
    session_id = models.CharField(max_length=255)
    # Set when a signed-in workspace member uses the public page.
    user = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["app", "source", "session_id"], name="end_user_unique_session"
            )
        ]

    def __str__(self) -> str:
        return self.session_id


class FromSource(models.TextChoices):
    API = "api", "Service API"
    WEB_APP = "webapp", "Web app"
    DEBUGGER = "debugger", "Debugger"
    OPENAI = "openai", "OpenAI-compatible API"


class Conversation(TenantModel):
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="conversations")
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.CASCADE, related_name="conversations"
    )
    # Whose a conversation without an end user is: the member previewing in the studio.
    user = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_source = models.CharField(max_length=16, choices=FromSource.choices)
    name = models.CharField(max_length=255, blank=True)
    inputs = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["app", "end_user", "-updated_at"])]

    def __str__(self) -> str:
        return self.name or str(self.id)


class MessageStatus(models.TextChoices):
    RUNNING = "running", "Generating"
    NORMAL = "normal", "Done"
    STOPPED = "stopped", "Stopped"
    ERROR = "error", "Error"


class Message(TenantModel):
    """One turn: the query and the answer. A completion-mode run is a message without a
    conversation. The row is created when the turn starts (status running) and finished
    once at the end, so a closed tab finds the answer on its return."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="messages")
    conversation = models.ForeignKey(
        Conversation, null=True, blank=True, on_delete=models.CASCADE, related_name="messages"
    )
    # Regenerating an answer starts a sibling branch from the same parent.
    parent_message = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    from_source = models.CharField(max_length=16, choices=FromSource.choices)
    task_id = models.UUIDField(default=uuid.uuid4, unique=True)
    query = models.TextField(blank=True)
    inputs = models.JSONField(default=dict)
    files = models.JSONField(default=list)  # [{type, transfer_method, upload_file_id|url}]
    answer = models.TextField(blank=True)
    status = models.CharField(
        max_length=16, choices=MessageStatus.choices, default=MessageStatus.RUNNING
    )
    error = models.TextField(blank=True)
    model_provider = models.CharField(max_length=100, blank=True)
    model_name = models.CharField(max_length=200, blank=True)
    message_tokens = models.PositiveIntegerField(default=0)
    answer_tokens = models.PositiveIntegerField(default=0)
    total_price = models.DecimalField(max_digits=16, decimal_places=7, default=0)
    currency = models.CharField(max_length=8, default="USD")
    latency = models.FloatField(default=0)  # seconds
    first_token_latency = models.FloatField(null=True, blank=True)  # seconds
    retriever_resources = models.JSONField(default=list)
    suggested_questions = models.JSONField(default=list)
    annotation = models.ForeignKey(
        "chat.Annotation", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            models.Index(fields=["conversation", "created_at"]),
            models.Index(fields=["app", "-created_at"]),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=MessageStatus.values), name="message_status_valid"
            )
        ]

    def __str__(self) -> str:
        return self.query[:60] or str(self.id)


class MessageFeedback(TenantModel):
    class Rating(models.TextChoices):
        LIKE = "like", "Like"
        DISLIKE = "dislike", "Dislike"

    class Source(models.TextChoices):
        USER = "user", "End user"
        ADMIN = "admin", "Workspace member"

    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="feedbacks")
    rating = models.CharField(max_length=8, choices=Rating.choices)
    content = models.TextField(blank=True, max_length=2000)
    from_source = models.CharField(max_length=8, choices=Source.choices)
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    user = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["message", "from_source"], name="feedback_one_per_message_source"
            )
        ]


class Annotation(TenantModel):
    """A curated answer: when annotation reply is on and a query is close enough to the
    question, this answer is given without calling the model."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="annotations")
    question = models.TextField()
    answer = models.TextField()
    message = models.ForeignKey(
        Message, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    # Embedding of the question, any width; empty until annotation reply embeds it.
    embedding = VectorField(null=True, blank=True)
    embedding_model = models.CharField(max_length=300, blank=True)  # provider/model
    hit_count = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    updated_at = models.DateTimeField(auto_now=True)


class UploadFile(TenantModel):
    """A file sent with a message (images for vision models), from the Service API or the
    web app. Stored on the configured storage backend."""

    name = models.CharField(max_length=255)
    file = models.FileField(upload_to="uploads/%Y/%m/")
    size = models.PositiveBigIntegerField()
    extension = models.CharField(max_length=16)
    mime_type = models.CharField(max_length=100)
    app = models.ForeignKey(
        App, null=True, blank=True, on_delete=models.CASCADE, related_name="files"
    )
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    def __str__(self) -> str:
        return self.name


class SavedMessage(TenantModel):
    """A text generator result a web app visitor kept (the "Saved" list)."""

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    message = models.ForeignKey(Message, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["message", "end_user"], name="saved_message_unique")
        ]


class BatchRun(TenantModel):
    """A CSV of inputs run through a text generator in the background, row by row."""

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    file_name = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    rows = models.JSONField(default=list)  # [{variable: value}], in file order
    results = models.JSONField(default=list)  # [{"answer": str, "error": str}], row by row
    error = models.TextField(blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(status__in=["queued", "running", "done", "failed"]),
                name="batch_run_status_valid",
            )
        ]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def done_count(self) -> int:
        return len(self.results)

    @property
    def percent(self) -> int:
        return int(100 * self.done_count / self.total) if self.total else 100
