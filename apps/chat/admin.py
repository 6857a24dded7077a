from django.contrib import admin

from apps.chat import models


@admin.register(models.App)
class AppAdmin(admin.ModelAdmin):
    list_display = ("name", "mode", "workspace", "updated_at")
    list_filter = ("mode", "workspace")
    search_fields = ("name",)


@admin.register(models.AppApiKey)
class AppApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "app", "workspace", "last_used_at", "revoked_at")
    list_filter = ("workspace",)
    exclude = ("key_hash",)


@admin.register(models.Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ("name", "app", "from_source", "workspace", "updated_at")
    list_filter = ("from_source", "workspace")
    search_fields = ("name",)


@admin.register(models.Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ("query", "app", "status", "model_name", "workspace", "created_at")
    list_filter = ("status", "from_source", "workspace")
    search_fields = ("query", "answer")


for model in (models.EndUser, models.MessageFeedback, models.Annotation, models.UploadFile):
    admin.site.register(model, list_filter=("workspace",))
