import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


def preview_owners(apps, schema_editor):
    """A preview conversation made before owners were kept belongs to whoever asked its
    first question."""
    Conversation = apps.get_model("chat", "Conversation")
    Message = apps.get_model("chat", "Message")
    for conversation in Conversation.objects.filter(
        from_source="debugger", end_user__isnull=True, user__isnull=True
    ).iterator():
        first = (
            Message.objects.filter(conversation=conversation, user__isnull=False)
            .order_by("created_at")
            .values_list("user_id", flat=True)
            .first()
        )
        if first is not None:
            Conversation.objects.filter(pk=conversation.pk).update(user_id=first)


class Migration(migrations.Migration):
    dependencies = [
        ("chat", "0002_webapp"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="conversation",
            name="user",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=django.db.models.deletion.SET_NULL,
                related_name="+",
                to=settings.AUTH_USER_MODEL,
            ),
        ),
        migrations.RunPython(preview_owners, migrations.RunPython.noop),
    ]
