"""Import and export of Dify DSL files from the apps list: the new app opens with the
importer's warnings shown; a bad file is a form error; only editors."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.chat.models import App
from apps.chat.services import apps as app_services
from apps.tenants.models import Role

pytestmark = pytest.mark.django_db

DIFY_CHAT = """\
app:
  description: Answers questions about returns.
  icon: 🛍️
  icon_type: emoji
  mode: chat
  name: Returns helper
kind: app
version: 0.1.5
model_config:
  model:
    completion_params:
      temperature: 0.2
    mode: chat
    name: some-model-we-lack
    provider: langgenius/nobody/nobody
  pre_prompt: You help with returns.
  opening_statement: Hi! Ask me about returns.
  user_input_form: []
"""


def upload(text: str, name: str = "app.yml") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, text.encode(), content_type="application/x-yaml")


def test_import_opens_the_new_app_and_shows_warnings(team):
    client = team.client(Role.EDITOR)
    response = client.post(reverse("app_import"), {"file": upload(DIFY_CHAT)}, follow=True)
    app = App.objects.get(workspace=team.workspace, name="Returns helper")
    assert response.redirect_chain[-1][0] == reverse("app_configure", args=[app.id])
    page = response.content.decode()
    assert "“Returns helper” imported." in page
    assert 'class="flash flash-warning"' in page
    assert app.config["opening_statement"] == "Hi! Ask me about returns."


@pytest.mark.parametrize(
    "content, error",
    [
        (b"kind: app\napp: [", "DSL"),
        (b"\xff\xfe\x00", "not UTF-8"),
        (b"x" * 1_100_000, "larger than 1 MB"),
    ],
)
def test_a_bad_file_is_a_form_error(team, content, error):
    file = SimpleUploadedFile("app.yml", content)
    response = team.client(Role.EDITOR).post(reverse("app_import"), {"file": file})
    assert response.status_code == 400
    assert b'id="import-app"' in response.content
    assert not App.objects.filter(workspace=team.workspace).exists()
    if error != "DSL":
        assert error in response.content.decode()


def test_export_downloads_yaml_that_imports_again(team):
    app = app_services.app_create(actor=team.members[Role.EDITOR], name="Writer", mode="chat")
    client = team.client(Role.EDITOR)
    response = client.get(reverse("app_export", args=[app.id]))
    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="Writer.yml"'
    text = response.content.decode()
    assert "Writer" in text
    client.post(reverse("app_import"), {"file": upload(text)})
    assert App.objects.filter(workspace=team.workspace, name__startswith="Writer").count() == 2


def test_only_editors_import_and_export(team, other_team):
    app = app_services.app_create(actor=team.members[Role.EDITOR], name="Writer", mode="chat")
    normal = team.client(Role.NORMAL)
    assert normal.post(reverse("app_import"), {"file": upload(DIFY_CHAT)}).status_code == 403
    assert normal.get(reverse("app_export", args=[app.id])).status_code == 403
    stranger = other_team.client(Role.OWNER)
    assert stranger.get(reverse("app_export", args=[app.id])).status_code == 404
