from django.contrib import admin

from apps.datasets import models


@admin.register(models.Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "indexing_technique", "permission", "workspace", "created_at")
    list_filter = ("indexing_technique", "workspace")
    search_fields = ("name",)


@admin.register(models.Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ("name", "dataset", "indexing_status", "workspace", "created_at")
    list_filter = ("indexing_status", "data_source_type", "workspace")
    search_fields = ("name",)


@admin.register(models.Segment)
class SegmentAdmin(admin.ModelAdmin):
    list_display = ("__str__", "document", "position", "enabled", "workspace")
    list_filter = ("enabled", "workspace")
    search_fields = ("content",)
    exclude = ("embedding", "search_vector")


admin.site.register(models.DatasetQuery, list_filter=("workspace",))
