"""Knowledge bases: datasets, their documents, and the chunks (segments) search runs on.

A document's indexing state lives in its row; the broker only carries wake-ups, and the
reconciler re-enqueues rows left in a non-terminal state. Segments of every dataset share
one table: a `vector` column of any width (with `embedding_dim`, so each width gets its own
partial HNSW expression index, created on demand) and a `tsvector` column under GIN."""

from __future__ import annotations

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import VectorField

from apps.core.models import TenantModel


class IndexingTechnique(models.TextChoices):
    HIGH_QUALITY = "high_quality", "High quality (embeddings)"
    ECONOMY = "economy", "Economy (full text only)"


class DatasetPermission(models.TextChoices):
    ONLY_ME = "only_me", "Only me"
    ALL_TEAM_MEMBERS = "all_team_members", "All members"
    PARTIAL_MEMBERS = "partial_members", "Chosen members"


class DocForm(models.TextChoices):
    TEXT = "text_model", "General chunks"
    HIERARCHICAL = "hierarchical_model", "Parent-child chunks"


class Dataset(TenantModel):
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True, max_length=400)
    permission = models.CharField(
        max_length=20, choices=DatasetPermission.choices, default=DatasetPermission.ONLY_ME
    )
    # Who may see it when permission is partial_members (the creator always may).
    members = models.ManyToManyField("tenants.User", blank=True, related_name="+")
    created_by = models.ForeignKey(
        "tenants.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    indexing_technique = models.CharField(
        max_length=16, choices=IndexingTechnique.choices, default=IndexingTechnique.HIGH_QUALITY
    )
    # Empty: the workspace's default embedding model at indexing time.
    embedding_model_provider = models.CharField(max_length=100, blank=True)
    embedding_model = models.CharField(max_length=200, blank=True)
    retrieval_model = models.JSONField(default=dict)  # Dify's retrieval_model shape
    doc_form = models.CharField(max_length=24, choices=DocForm.choices, default=DocForm.TEXT)
    process_rule = models.JSONField(default=dict)  # default for new documents
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            # Dify's rule: a knowledge base's name is unique in its workspace.
            models.UniqueConstraint(fields=["workspace", "name"], name="dataset_name_unique"),
            models.CheckConstraint(
                condition=models.Q(permission__in=DatasetPermission.values),
                name="dataset_permission_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(indexing_technique__in=IndexingTechnique.values),
                name="dataset_indexing_technique_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class IndexingStatus(models.TextChoices):
    WAITING = "waiting", "Queued"
    PARSING = "parsing", "Parsing"
    CLEANING = "cleaning", "Cleaning"
    SPLITTING = "splitting", "Splitting"
    INDEXING = "indexing", "Indexing"
    COMPLETED = "completed", "Completed"
    ERROR = "error", "Error"
    PAUSED = "paused", "Paused"


TERMINAL_STATUSES = (IndexingStatus.COMPLETED, IndexingStatus.ERROR, IndexingStatus.PAUSED)
# A worker holds the row (claimed_at set) while it is in one of these.
ACTIVE_STATUSES = (
    IndexingStatus.PARSING,
    IndexingStatus.CLEANING,
    IndexingStatus.SPLITTING,
    IndexingStatus.INDEXING,
)


class DataSourceType(models.TextChoices):
    UPLOAD_FILE = "upload_file", "Uploaded file"
    TEXT = "text", "Pasted text"
    URL = "url", "Web page"


class Document(TenantModel):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="documents")
    name = models.CharField(max_length=255)
    position = models.PositiveIntegerField(default=0)
    data_source_type = models.CharField(max_length=16, choices=DataSourceType.choices)
    source_url = models.URLField(max_length=2000, blank=True)
    # The original upload, or the pasted/fetched text saved as a file: re-indexing reads it.
    file = models.FileField(upload_to="datasets/%Y/%m/", blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    mime_type = models.CharField(max_length=100, blank=True)
    batch = models.CharField(max_length=32, db_index=True)  # the upload batch, as Dify's
    created_by = models.ForeignKey(
        "tenants.User", null=True, on_delete=models.SET_NULL, related_name="+"
    )
    process_rule = models.JSONField(default=dict)  # Dify's process_rule shape
    doc_form = models.CharField(max_length=24, choices=DocForm.choices, default=DocForm.TEXT)
    doc_language = models.CharField(max_length=32, default="English")
    indexing_status = models.CharField(
        max_length=16, choices=IndexingStatus.choices, default=IndexingStatus.WAITING
    )
    error = models.TextField(blank=True)  # why indexing failed, in words for the user
    enabled = models.BooleanField(default=True)
    archived = models.BooleanField(default=False)
    word_count = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0)
    completed_segments = models.PositiveIntegerField(default=0)
    total_segments = models.PositiveIntegerField(default=0)
    # A worker's claim on the row; the reconciler frees claims older than the lease.
    claimed_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    parsing_completed_at = models.DateTimeField(null=True, blank=True)
    cleaning_completed_at = models.DateTimeField(null=True, blank=True)
    splitting_completed_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    paused_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    # Time the last indexing run spent in the embedding model, and in all (milliseconds).
    embedding_ms = models.PositiveIntegerField(default=0)
    indexing_ms = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position", "created_at"]
        indexes = [models.Index(fields=["indexing_status", "claimed_at"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(indexing_status__in=IndexingStatus.values),
                name="document_indexing_status_valid",
            )
        ]

    def __str__(self) -> str:
        return self.name


class Segment(TenantModel):
    """A chunk. In general documents every segment is searched. In parent-child
    documents the parents (parent=None) carry the context returned and the children carry
    the embeddings and text that are matched."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="+")
    document = models.ForeignKey(Document, on_delete=models.CASCADE, related_name="segments")
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="children"
    )
    position = models.PositiveIntegerField()
    content = models.TextField()
    answer = models.TextField(blank=True)
    keywords = models.JSONField(default=list)
    word_count = models.PositiveIntegerField(default=0)
    tokens = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64)
    enabled = models.BooleanField(default=True)
    searchable = models.BooleanField(default=True)  # False for parents of child chunks
    hit_count = models.PositiveIntegerField(default=0)
    embedding = VectorField(null=True, blank=True)  # any width; see embedding_dim
    embedding_dim = models.PositiveSmallIntegerField(null=True, blank=True)
    embedding_model = models.CharField(max_length=300, blank=True)  # provider/model
    search_vector = SearchVectorField(null=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["position"]
        indexes = [
            GinIndex(fields=["search_vector"], name="segment_search_vector_gin"),
            models.Index(fields=["document", "position"]),
            models.Index(fields=["dataset", "embedding_dim"]),
        ]
        constraints = [
            # Re-running an indexing step can never leave a duplicate chunk.
            models.UniqueConstraint(
                fields=["document", "parent", "position"],
                name="segment_unique_position",
                nulls_distinct=False,
            )
        ]

    def __str__(self) -> str:
        return self.content[:60]


class DatasetQuery(TenantModel):
    """A past query, for the hit-testing page's history."""

    class Source(models.TextChoices):
        HIT_TESTING = "hit_testing", "Hit testing"
        APP = "app", "App"
        API = "api", "Knowledge API"

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="queries")
    content = models.TextField()
    source = models.CharField(max_length=16, choices=Source.choices)
    created_by = models.ForeignKey(
        "tenants.User", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        ordering = ["-created_at"]
